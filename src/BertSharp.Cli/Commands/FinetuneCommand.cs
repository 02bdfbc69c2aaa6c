using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Evaluation;
using BertSharp.Reporting;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;
using BertSharp.Training;

namespace BertSharp.Cli.Commands;

/// <summary>`bert finetune classify|similarity|tag`: one command per task family, on the Trainer shared with pre-training.</summary>
public static class FinetuneCommand
{
    public static Command Build(CommandContext ctx)
    {
        var cmd = new Command("finetune", "Fine-tune a BERT on a task (classify, similarity, tag, qa), from a pre-trained folder or from random initialization");
        cmd.Add(Classify(ctx));
        cmd.Add(Similarity(ctx));
        cmd.Add(Tag(ctx));
        cmd.Add(FinetuneQaCommand.Build(ctx));
        return cmd;
    }

    const string Common =
        "Starts from --model DIR (a `bert pretrain` run folder or any HF BERT folder; the new head is reported as newly " +
        "initialized) or from --init random with --model-preset and --vocab (a from-scratch baseline). Trains with AdamW, " +
        "warmup over 10% of the steps then linear decay, length-grouped dynamically padded batches; evaluates on --dev " +
        "each epoch and keeps the best model at the root of --output; at the end scores it on dev and --test, writes " +
        "predictions_dev.jsonl / predictions_test.jsonl and results.json there and prints the report to stderr " +
        "(with --json the final metrics go to stdout). --resume continues an interrupted run. Defaults by model size: " +
        FineTuneDefaults.Describe + ".";

    static Command Classify(CommandContext ctx)
    {
        var b = new Builder(ctx, ClassificationModel.Task);
        var format = b.Options.Add(new Option<string?>("--format") { Description = "tsv, csv or jsonl (default: by extension)" });
        b.AddColumns(pairDescription: "Column of the second text of a pair (with --text-column; default: found with the text)");
        var cmd = new Command("classify",
            "Fine-tune a text or pair classifier (BertForSequenceClassification). Metrics: accuracy (selects the best model), " +
            "macro-F1; per-class report and confusion matrix at the end. Label names are kept in config.json id2label/label2id.\n" +
            ClassificationData.FormatsHelp + "\n" + ClassificationData.DefaultColumnsHelp + "\n" + Common + "\n" + TextLineReader.InputRule);
        b.Finish(cmd, ClassificationModel.Family, v => v.Data(format));
        return cmd;
    }

    static Command Similarity(CommandContext ctx)
    {
        var b = new Builder(ctx, SimilarityModel.Task);
        var format = b.Options.Add(new Option<string?>("--format") { Description = "stsb, tsv, csv or jsonl (default: by file name and content)" });
        b.AddColumns(pairDescription: "Column of the second sentence");
        var cmd = new Command("similarity",
            "Fine-tune a sentence-pair similarity scorer (a one-output regression head, mean squared error). Metrics: " +
            "Pearson (selects the best model) and Spearman.\n" + SimilarityData.FormatsHelp + "\n" + Common + "\n" + TextLineReader.InputRule);
        b.Finish(cmd, SimilarityModel.Family, v => v.Data(format));
        return cmd;
    }

    static Command Tag(CommandContext ctx)
    {
        var b = new Builder(ctx, TaggingModel.Task);
        var format = b.Options.Add(new Option<string?>("--format") { Description = "ptb, conll or jsonl (default: by name: .zip/.mrg/.pos or a folder → ptb, .jsonl → jsonl, else conll)" });
        var tagColumn = b.Options.Add(new Option<int?>("--tag-column") { Description = "CoNLL: 0-based column of the tag (default: the last; the word is column 0)" });
        var text = b.Options.Add(new Option<string?>("--text-column") { Description = "JSONL: field holding the list of words (default: tokens or words)" });
        var label = b.Options.Add(new Option<string?>("--label-column") { Description = "JSONL: field holding the list of tags (default: tags, ner_tags, pos_tags, chunk_tags or labels)" });
        var scheme = b.Options.Add(new Option<string?>("--entity-scheme") { Description = "Chunk tags: score entities with seqeval's strict mode in this scheme (IOB1, IOB2, IOBES); default: seqeval's default (lenient) mode" });
        var cmd = new Command("tag",
            "Fine-tune a word tagger (BertForTokenClassification): each word's tag is learned on its first WordPiece, the " +
            "other pieces are ignored by the loss; sentences longer than --max-seq-length are split into windows of whole " +
            "words, never cut. Metrics: tag accuracy; with chunk tags (B-/I-/E-/S-/O) also entity precision/recall/F1 with " +
            "seqeval's semantics (F1 then selects the best model).\n" + TaggingData.FormatsHelp + "\n" + TaggingData.TreebankSplitHelp + "\n" + Common + "\n" + TextLineReader.InputRule);
        b.Finish(cmd, TaggingModel.Family, v => new DataFileOptions
        {
            Format = v.Values!.Get(format), TagColumn = v.Values.Get(tagColumn), TextColumn = v.Values.Get(text), LabelColumn = v.Values.Get(label),
        }, o => o with { EntityScheme = b.Values!.Get(scheme) is { } s ? TaggingModel.ParseScheme(s) : null });
        return cmd;
    }

    /// <summary>The options every finetune subcommand shares, and the run.</summary>
    sealed class Builder
    {
        readonly CommandContext ctx;
        readonly string task;
        public RunOptions Options { get; } = new();
        public RunOptions.Values? Values { get; private set; }
        readonly Option<string> output;
        readonly Option<string?> train, dev, test, model, init, preset, vocab;
        readonly Option<int?> epochs, maxSeq, maxTrain, maxEval;
        readonly Option<int> batch, evalBatch, accum;
        readonly Option<double?> lr;
        readonly Option<double> warmup, weightDecay;
        readonly Option<long?> maxSteps;
        readonly Option<long> evalEvery;
        readonly Option<bool> cased, noGrouping;
        readonly Option<bool> json = new("--json") { Description = "Write the final metrics to stdout as JSON" };
        readonly Option<bool> resume = new("--resume") { Description = "Continue the run in --output from its last checkpoint (its saved options are used)" };
        Option<string?>? textColumn, pairColumn, labelColumn;
        Option<bool>? noHeader;

        public Builder(CommandContext ctx, string task)
        {
            this.ctx = ctx;
            this.task = task;
            // Not Required at parse time: with --resume it comes from the run's args.json.
            train = Options.Add(new Option<string?>("--train") { Description = "Training data file (required; with --resume, taken from the run)" });
            dev = Options.Add(new Option<string?>("--dev") { Description = "Evaluation data, scored each epoch (required unless --train has a built-in split)" });
            test = Options.Add(new Option<string?>("--test") { Description = "Test data, scored once with the best model at the end" });
            output = Options.Add(new Option<string>("--output") { Description = "Run folder", DefaultValueFactory = _ => $"runs/finetune-{task}" });
            model = Options.Add(new Option<string?>("--model") { Description = "Starting model folder (a `bert pretrain` run folder or an HF BERT folder); with --init random only its config and vocabulary are used" });
            init = Options.Add(new Option<string?>("--init") { Description = "pretrained (default: the weights of --model) or random (a from-scratch baseline)" });
            preset = Options.Add(new Option<string?>("--model-preset") { Description = "With --init random and no --model: the architecture preset (seed, tiny, mini, small, medium, base, large; default seed)" });
            vocab = Options.Add(new Option<string?>("--vocab") { Description = "With --init random and no --model: the vocab.txt" });
            cased = Options.Add(new Option<bool>("--cased") { Description = "With --vocab: keep case and accents (default: lower-case)" });
            epochs = Options.Add(new Option<int?>("--epochs") { Description = "Passes over the training data (default by model size)" });
            batch = Options.Add(new Option<int>("--batch-size") { Description = "Examples per optimizer step (per micro-batch with --gradient-accumulation)", DefaultValueFactory = _ => 32 });
            lr = Options.Add(new Option<double?>("--learning-rate") { Description = "Peak learning rate (default by model size)" });
            maxSeq = Options.Add(new Option<int?>("--max-seq-length") { Description = "Tokens per input including [CLS]/[SEP] (default: min(128, the model's max_position_embeddings))" });
            warmup = Options.Add(new Option<double>("--warmup-ratio") { Description = "Fraction of the steps with a linear warmup", DefaultValueFactory = _ => 0.1 });
            weightDecay = Options.Add(new Option<double>("--weight-decay") { Description = "AdamW weight decay (not on biases and LayerNorm)", DefaultValueFactory = _ => 0.01 });
            accum = Options.Add(new Option<int>("--gradient-accumulation") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 });
            maxSteps = Options.Add(new Option<long?>("--max-steps") { Description = "Optimizer steps to train (overrides --epochs)" });
            evalEvery = Options.Add(new Option<long>("--eval-every") { Description = "Evaluate on dev every N steps (0: once per epoch)", DefaultValueFactory = _ => 0 });
            evalBatch = Options.Add(new Option<int>("--eval-batch-size") { Description = "Inputs per forward pass when evaluating", DefaultValueFactory = _ => 128 });
            maxTrain = Options.Add(new Option<int?>("--max-train-examples") { Description = "Use only the first N training examples" });
            maxEval = Options.Add(new Option<int?>("--max-eval-examples") { Description = "Use only the first N examples of --dev and --test" });
            noGrouping = Options.Add(new Option<bool>("--no-length-grouping") { Description = "Plain shuffled batches instead of length-grouped ones" });
        }

        public void AddColumns(string pairDescription)
        {
            textColumn = Options.Add(new Option<string?>("--text-column") { Description = "Column of the text: a header name (or JSON field) or a 0-based index" });
            pairColumn = Options.Add(new Option<string?>("--pair-column") { Description = pairDescription });
            labelColumn = Options.Add(new Option<string?>("--label-column") { Description = "Column of the label: a header name (or JSON field) or a 0-based index" });
            noHeader = Options.Add(new Option<bool>("--no-header") { Description = "TSV/CSV files have no header row (give columns by index)" });
        }

        public DataFileOptions Data(Option<string?> format) => new()
        {
            Format = Values!.Get(format), TextColumn = Values.Get(textColumn!), PairColumn = Values.Get(pairColumn!),
            LabelColumn = Values.Get(labelColumn!), NoHeader = Values.Get(noHeader!),
        };

        public void Finish<T>(Command cmd, TaskFamily<T> family, Func<Builder, DataFileOptions> data, Func<FineTuneOptions, FineTuneOptions>? extra = null)
        {
            foreach (var opt in Options.Options) cmd.Add(opt);
            cmd.Add(json);
            cmd.Add(resume);
            cmd.SetAction(r =>
            {
                bool isResume = r.GetValue(resume);
                var outDir = r.GetValue(output)!;
                var run = new RunFolder(outDir);
                var saved = isResume ? RunOptions.LoadSaved(run.ArgsFile) : null;
                var v = Values = Options.Resolve(r, saved);
                long seed = r.GetValue(Cli.Seed) ?? v.Get<long?>("--seed") ?? 42;
                string initMode = (v.Get(init) ?? "pretrained").ToLowerInvariant();
                if (initMode is not ("pretrained" or "random")) throw new BertSharpException($"--init '{initMode}': choose pretrained or random");
                var o = new FineTuneOptions
                {
                    Train = v.Get(train) ?? throw new BertSharpException("--train is required (the training data file)"), Dev = v.Get(dev), Test = v.Get(test), Data = data(this),
                    Model = v.Get(model), RandomInit = initMode == "random", ModelPreset = v.Get(preset), Vocab = v.Get(vocab),
                    LowerCase = !v.Get(cased), MaxSeqLength = v.Get(maxSeq), BatchSize = v.Get(batch), EvalBatchSize = v.Get(evalBatch),
                    MaxTrainExamples = v.Get(maxTrain), MaxEvalExamples = v.Get(maxEval), GroupByLength = !v.Get(noGrouping),
                    Precision = r.GetValue(Cli.Precision)!, Device = r.GetValue(Cli.Device)!,
                };
                if (extra != null) o = extra(o);
                if (!isResume && Directory.Exists(run.LastCheckpoint))
                    throw new BertSharpException($"{run.Root}: already holds a run; continue it with --resume, or choose another --output");
                var args = v.ToDictionary();
                args["--seed"] = seed;
                run.WriteArgs(args);

                var prepared = FineTuning.Prepare(family, o, seed, m => ctx.Err.WriteLine(m));
                double learningRate = v.Get(lr) ?? prepared.DefaultLearningRate;
                int epochCount = v.Get(epochs) ?? prepared.DefaultEpochs;
                var trainer = new Trainer(prepared.Task, new TrainingOptions
                {
                    OutputDir = outDir, LearningRate = learningRate, WarmupRatio = v.Get(warmup), WeightDecay = v.Get(weightDecay),
                    MaxSteps = v.Get(maxSteps), Epochs = epochCount, GradientAccumulation = v.Get(accum), EvalEvery = v.Get(evalEvery),
                    Seed = seed, Resume = isResume,
                })
                { Plots = prepared.Model.Plots };
                ctx.Err.WriteLine($"training: {trainer.TotalSteps} steps ({epochCount} epochs of {prepared.Task.BatchesPerEpoch} batches of {o.BatchSize}), learning rate {learningRate:G3}, max_seq_length {prepared.Model.MaxSeqLength}; best model by dev {prepared.Model.SelectionMetric}");
                TrainingConsole.Run(ctx, trainer, $"finetune {task}");
                if (!Completed(run, trainer.TotalSteps))
                {
                    ctx.Err.WriteLine($"run folder: {run.Root} (not finished; continue with --resume --output {outDir})");
                    return 0;
                }
                var final = FineTuning.FinalEvaluation(prepared, run.Root);
                foreach (var f in final)
                {
                    ctx.Err.WriteLine();
                    ctx.Err.WriteLine($"== {f.Split}: {f.Data} (best model) ==");
                    ctx.Err.Write(f.Score.Report);
                    ctx.Err.WriteLine($"predictions: {f.PredictionsFile}");
                }
                ctx.Err.WriteLine($"run folder: {run.Root} (best model at its root; try: bert predict {run.Root} …, bert evaluate {run.Root} --data FILE)");
                if (r.GetValue(json))
                {
                    var doc = new JsonObject { ["task"] = task, ["run"] = run.Root };
                    foreach (var f in final) doc[f.Split] = JsonLines.Metrics(f.Score.Metrics);
                    ctx.Out.WriteLine(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                }
                return 0;
            });
        }

        static bool Completed(RunFolder run, long totalSteps)
        {
            var state = Path.Combine(run.LastCheckpoint, "trainer_state.json");
            if (!File.Exists(state)) return false;
            var j = JsonNode.Parse(File.ReadAllText(state));
            return j?["global_step"]?.GetValue<long>() >= totalSteps;
        }
    }
}
