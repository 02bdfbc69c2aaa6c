using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Embedding;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;

namespace BertSharp.Cli.Commands;

/// <summary>`bert finetune classify|similarity|tag`: one command per task family, on the Trainer shared with pre-training.</summary>
public static class FinetuneCommand
{
    public static Command Build(CommandContext ctx)
    {
        var cmd = new Command("finetune", "Fine-tune a BERT on a task (classify, similarity, tag, qa) or as a sentence encoder (embed), from a pre-trained folder or from random initialization");
        cmd.Add(Classify(ctx));
        cmd.Add(Similarity(ctx));
        cmd.Add(Tag(ctx));
        cmd.Add(FinetuneQaCommand.Build(ctx));
        cmd.Add(Embed(ctx));
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
        var format = b.Add(new Option<string?>("--format") { Description = "tsv, csv or jsonl (default: by extension)" });
        b.AddColumns(pairDescription: "Column of the second text of a pair (with --text-column; default: found with the text)");
        var multiLabel = b.Add(new Option<bool>("--multi-label") { Description = "Multi-label: each example has a set of labels (the label column holds them separated by commas, or a JSON list in JSONL); a sigmoid per label, binary cross-entropy, a decision threshold chosen on --dev" });
        var classWeights = b.Add(new Option<string?>("--class-weights") { Description = "Weigh the labels in the loss for imbalanced data: auto (n_samples / (n_classes × count), scikit-learn's balanced; with --multi-label each label's pos_weight = negatives / positives) or FILE (a 'label<TAB>weight' line per label, the others weigh 1)" });
        var longInputs = b.AddLongInputs("logits");
        var cmd = new Command("classify", "Fine-tune a text or pair classifier (BertForSequenceClassification)").WithDetails(
            "Metrics: accuracy (selects the best model), macro-F1; per-class report and confusion matrix at the end. Label names are kept in config.json id2label/label2id.\n" +
            DataFormatHelp.LongInputs + "\n" + DataFormatHelp.MultiLabel + "\n" + DataFormatHelp.ClassWeights + "\n" +
            DataFormatHelp.ClassificationFormats + "\n" + DataFormatHelp.ClassificationColumns + "\n" + Common + "\n" + TextLineReader.InputRule);
        b.Finish(cmd, v => v.Data(format) with { MultiLabel = v.Get(multiLabel) }, o => longInputs(o) with { ClassWeights = b.Get(classWeights) });
        return cmd;
    }

    static Command Similarity(CommandContext ctx)
    {
        var b = new Builder(ctx, SimilarityModel.Task);
        var format = b.Add(new Option<string?>("--format") { Description = "stsb, tsv, csv or jsonl (default: by file name and content)" });
        b.AddColumns(pairDescription: "Column of the second sentence");
        var longInputs = b.AddLongInputs("scores");
        var cmd = new Command("similarity", "Fine-tune a sentence-pair similarity scorer (a one-output regression head, mean squared error)").WithDetails(
            "Metrics: Pearson (selects the best model) and Spearman.\n" + DataFormatHelp.LongInputs + "\n" + DataFormatHelp.SimilarityFormats + "\n" + Common + "\n" + TextLineReader.InputRule);
        b.Finish(cmd, v => v.Data(format), longInputs);
        return cmd;
    }

    static Command Embed(CommandContext ctx)
    {
        var b = new Builder(ctx, EmbeddingModel.Task);
        var format = b.Add(new Option<string?>("--format") { Description = "stsb, tsv, csv or jsonl (default: by file name and content)" });
        b.AddColumns(pairDescription: "Column of the second text (the positive)");
        var pooling = b.Add(new Option<string?>("--pooling") { Description = "mean, cls, max or mean-sqrt-len (several joined by +); default: the --model folder's sentence-transformers pooling, else mean" });
        var normalize = b.Add(new Option<bool?>("--normalize") { Description = "L2-normalise the embeddings (true/false); default: as the --model folder (a Normalize module), else false" });
        var loss = b.Add(new Option<string?>("--loss") { Description = "For scored pairs: cosent (default) or cosine (MSE of the cosine against the score / the largest score)" });
        var cmd = new Command("embed", "Fine-tune a sentence encoder (a BertModel with sentence-transformers pooling) for embeddings").WithDetails(
            DataFormatHelp.EmbeddingData + "\nMetrics: on scored pairs (an STS file, the usual --dev), the cosine Spearman (selects the best model) and Pearson; " +
            "on pairs or triples, accuracy (each anchor's own positive ranked first among all the file's candidates) and MRR. The run folder is a " +
            "sentence-transformers folder (modules.json, 1_Pooling/, sentence_bert_config.json) that `bert embed` and sentence-transformers load.\n" +
            Common + "\n" + TextLineReader.InputRule);
        b.Finish(cmd, v => v.Data(format), o => o with { Pooling = b.Get(pooling), Normalize = b.Get(normalize), Loss = b.Get(loss) });
        return cmd;
    }

    static Command Tag(CommandContext ctx)
    {
        var b = new Builder(ctx, TaggingModel.Task);
        var format = b.Add(new Option<string?>("--format") { Description = "ptb, conll or jsonl (default: by name: .mrg/.pos, a folder or a treebank .zip → ptb, a .zip with train.txt → conll, .jsonl → jsonl, else conll)" });
        var tagColumn = b.Add(new Option<int?>("--tag-column") { Description = "CoNLL: 0-based column of the tag (default: the last; the word is column 0)" });
        var text = b.Add(new Option<string?>("--text-column") { Description = "JSONL: field holding the list of words (default: tokens or words)" });
        var label = b.Add(new Option<string?>("--label-column") { Description = "JSONL: field holding the list of tags (default: tags, ner_tags, pos_tags, chunk_tags or labels)" });
        var scheme = b.Add(new Option<string?>("--entity-scheme") { Description = "Chunk tags: score entities with seqeval's strict mode in this scheme (IOB1, IOB2, IOBES); default: seqeval's default (lenient) mode" });
        var cmd = new Command("tag", "Fine-tune a word tagger (BertForTokenClassification)").WithDetails(
            "Each word's tag is learned on its first WordPiece, the other pieces are ignored by the loss; sentences longer than --max-seq-length are split into windows of whole " +
            "words, never cut. Metrics: tag accuracy; with chunk tags (B-/I-/E-/S-/O) also entity precision/recall/F1 with " +
            "seqeval's semantics (F1 then selects the best model).\n" + DataFormatHelp.TaggingFormats + "\n" + DataFormatHelp.Treebank + "\n" + Common + "\n" + TextLineReader.InputRule);
        b.Finish(cmd, v => new DataFileOptions
        {
            Format = v.Get(format), TagColumn = v.Get(tagColumn), TextColumn = v.Get(text), LabelColumn = v.Get(label),
        }, o => o with { EntityScheme = b.Get(scheme) is { } s ? TaggingModel.ParseScheme(s) : null });
        return cmd;
    }

    /// <summary>The options every finetune subcommand shares, and the run.</summary>
    sealed class Builder
    {
        readonly CommandContext ctx;
        readonly string task;
        readonly List<Option> options = new();
        public ParseResult? Parsed { get; private set; }
        readonly Option<string> output;
        readonly Option<string?> train, dev, test, model, init, preset, vocab;
        readonly Option<int?> epochs, maxSeq, maxTrain, maxEval, evalBatch;
        readonly Option<int> batch, accum;
        readonly Option<double?> lr;
        readonly Option<double> warmup, weightDecay;
        readonly Option<long?> maxSteps;
        readonly Option<long> evalEvery;
        readonly Option<string?> metric;
        readonly Option<int?> patience;
        readonly Option<bool> cased, noGrouping;
        readonly Option<bool> json = new("--json") { Description = "Write the final metrics to stdout as JSON" };
        readonly Option<bool> resume = new("--resume") { Description = "Continue the run in --output from its last checkpoint (its saved options are used)" };
        Option<string?>? textColumn, pairColumn, labelColumn;
        Option<bool>? noHeader;

        public Option<T> Add<T>(Option<T> option) { options.Add(option); return option; }

        public Builder(CommandContext ctx, string task)
        {
            this.ctx = ctx;
            this.task = task;
            var d = new FineTuneOptions { Task = task };
            // Not Required at parse time: with --resume it comes from the run's args.json.
            train = Add(new Option<string?>("--train") { Description = "Training data file (required; with --resume, taken from the run)" });
            dev = Add(new Option<string?>("--dev") { Description = "Evaluation data, scored each epoch (required unless --train has a built-in split)" });
            test = Add(new Option<string?>("--test") { Description = "Test data, scored once with the best model at the end" });
            output = Add(new Option<string>("--output") { Description = "Run folder", DefaultValueFactory = _ => d.OutputFolder });
            model = Add(new Option<string?>("--model") { Description = "Starting model: a folder (a `bert pretrain` run folder or an HF BERT folder) or a Hub id (org/name[@revision]); with --init random only its config and vocabulary are used" });
            init = Add(new Option<string?>("--init") { Description = "pretrained (default: the weights of --model) or random (a from-scratch baseline)" });
            preset = Add(new Option<string?>("--model-preset") { Description = "With --init random and no --model: the architecture preset (seed, tiny, mini, small, medium, base, large; default seed)" });
            vocab = Add(new Option<string?>("--vocab") { Description = "With --init random and no --model: the vocab.txt" });
            cased = Add(new Option<bool>("--cased") { Description = "With --vocab: keep case and accents (default: lower-case)" });
            epochs = Add(new Option<int?>("--epochs") { Description = "Passes over the training data (default by model size)" });
            batch = Add(new Option<int>("--batch-size") { Description = "Examples per optimizer step (per micro-batch with --gradient-accumulation)", DefaultValueFactory = _ => d.BatchSize });
            lr = Add(new Option<double?>("--learning-rate") { Description = "Peak learning rate (default by model size)" });
            maxSeq = Add(new Option<int?>("--max-seq-length") { Description = "Tokens per input including [CLS]/[SEP] (default: min(128, the model's max_position_embeddings))" });
            warmup = Add(new Option<double>("--warmup-ratio") { Description = "Fraction of the steps with a linear warmup", DefaultValueFactory = _ => d.WarmupRatio });
            weightDecay = Add(new Option<double>("--weight-decay") { Description = "AdamW weight decay (not on biases and LayerNorm)", DefaultValueFactory = _ => d.WeightDecay });
            accum = Add(new Option<int>("--gradient-accumulation") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => d.GradientAccumulation });
            maxSteps = Add(new Option<long?>("--max-steps") { Description = "Optimizer steps to train (overrides --epochs)" });
            evalEvery = Add(new Option<long>("--eval-every") { Description = "Evaluate on dev every N steps (0: once per epoch)", DefaultValueFactory = _ => d.EvalEvery });
            metric = Add(new Option<string?>("--metric-for-best-model") { Description = EarlyStoppingHelp.Metric });
            patience = Add(new Option<int?>("--early-stopping-patience") { Description = EarlyStoppingHelp.Patience });
            evalBatch = Add(new Option<int?>("--eval-batch-size") { Description = "Inputs per forward pass when evaluating (default 128)" });
            maxTrain = Add(new Option<int?>("--max-train-examples") { Description = "Use only the first N training examples" });
            maxEval = Add(new Option<int?>("--max-eval-examples") { Description = "Use only the first N examples of --dev and --test" });
            noGrouping = Add(new Option<bool>("--no-length-grouping") { Description = "Plain shuffled batches instead of length-grouped ones" });
        }

        public void AddColumns(string pairDescription)
        {
            textColumn = Add(new Option<string?>("--text-column") { Description = "Column of the text: a header name (or JSON field) or a 0-based index" });
            pairColumn = Add(new Option<string?>("--pair-column") { Description = pairDescription });
            labelColumn = Add(new Option<string?>("--label-column") { Description = "Column of the label: a header name (or JSON field) or a 0-based index" });
            noHeader = Add(new Option<bool>("--no-header") { Description = "TSV/CSV files have no header row (give columns by index)" });
        }

        /// <summary>--truncate, --doc-stride and --window-aggregation (classify and similarity, whose <paramref name="outputs"/>
        /// the windows combine); returns what they set in the options.</summary>
        public Func<FineTuneOptions, FineTuneOptions> AddLongInputs(string outputs)
        {
            var truncate = Add(new Option<bool>("--truncate") { Description = "Cut inputs longer than --max-seq-length to it (HF's longest_first) instead of reading them in windows; the cuts are counted and reported" });
            var stride = Add(new Option<int?>("--doc-stride") { Description = "Tokens between the starts of consecutive windows of an input longer than --max-seq-length (default: half the window, (max-seq-length − 2) / 2; at most max-seq-length − 2)" });
            var aggregation = Add(new Option<string>("--window-aggregation") { Description = $"How the windows of a long input make its prediction: the mean or the max of their {outputs}", DefaultValueFactory = _ => "mean" });
            aggregation.AcceptOnlyFromAmong("mean", "max");
            return o => o with { Truncate = Get(truncate), DocStride = Get(stride), WindowAggregation = LongInputSettings.ParseAggregation(Get(aggregation)) };
        }

        public T Get<T>(Option<T> option) => Parsed!.GetValue(option)!;

        public DataFileOptions Data(Option<string?> format) => new()
        {
            Format = Get(format), TextColumn = Get(textColumn!), PairColumn = Get(pairColumn!), LabelColumn = Get(labelColumn!), NoHeader = Get(noHeader!),
        };

        public void Finish(Command cmd, Func<Builder, DataFileOptions> data, Func<FineTuneOptions, FineTuneOptions>? extra = null)
        {
            foreach (var opt in options) cmd.Add(opt);
            cmd.Add(json);
            cmd.Add(resume);
            cmd.SetAction(r =>
            {
                Parsed = r;
                string? initMode = r.GetValue(init)?.ToLowerInvariant();
                if (initMode is not (null or "pretrained" or "random")) throw new BertSharpException($"--init '{initMode}': choose pretrained or random");
                var o = new FineTuneOptions
                {
                    Task = task, Output = r.GetValue(output), Resume = r.GetValue(resume),
                    Train = r.GetValue(train), Dev = r.GetValue(dev), Test = r.GetValue(test), Data = data(this),
                    Model = ModelArgument.Pin(ctx, r.GetValue(model)), RandomInit = initMode == "random", ModelPreset = r.GetValue(preset), Vocab = r.GetValue(vocab),
                    LowerCase = !r.GetValue(cased), MaxSeqLength = r.GetValue(maxSeq), BatchSize = r.GetValue(batch), EvalBatchSize = r.GetValue(evalBatch),
                    MaxTrainExamples = r.GetValue(maxTrain), MaxEvalExamples = r.GetValue(maxEval), GroupByLength = !r.GetValue(noGrouping),
                    LearningRate = r.GetValue(lr), Epochs = r.GetValue(epochs), MaxSteps = r.GetValue(maxSteps), WarmupRatio = r.GetValue(warmup),
                    WeightDecay = r.GetValue(weightDecay), GradientAccumulation = r.GetValue(accum), EvalEvery = r.GetValue(evalEvery),
                    MetricForBestModel = r.GetValue(metric), EarlyStoppingPatience = r.GetValue(patience),
                    Seed = r.GetValue(Cli.Seed), Threads = r.GetValue(Cli.Threads), Precision = Cli.PrecisionOf(r), Device = r.GetValue(Cli.Device)!,
                };
                if (extra != null) o = extra(o);
                var result = TrainingConsole.Run(ctx, $"finetune {task}", (events, cancel) => FineTuneRun.Run(o, events, cancel));
                if (!result.Completed)
                {
                    ctx.Err.WriteLine(TrainingConsole.NotFinished(result.RunFolder, o.OutputFolder));
                    return 0;
                }
                if (result.Training.StopReason is { } reason) ctx.Err.WriteLine($"stopped early at step {result.Training.Step} of {result.Training.TotalSteps}: {reason}");
                foreach (var f in result.Final)
                {
                    ctx.Err.WriteLine();
                    ctx.Err.WriteLine($"== {f.Split}: {f.Data} (best model) ==");
                    ctx.Err.Write(f.Score.Report);
                    ctx.Err.WriteLine($"predictions: {f.PredictionsFile}");
                }
                ctx.Err.WriteLine($"run folder: {result.RunFolder} (best model at its root; try: bert predict {result.RunFolder} …, bert evaluate {result.RunFolder} --data FILE)");
                if (r.GetValue(json)) WriteFinalJson(ctx, task, result);
                return 0;
            });
        }
    }

    /// <summary>--json: the task, the run folder, the stop reason if any and the final metrics of each split.</summary>
    internal static void WriteFinalJson(CommandContext ctx, string task, FineTuneResult result)
    {
        var doc = new JsonObject { ["task"] = task, ["run"] = result.RunFolder };
        if (result.Training.StopReason is { } stopped) doc["stop_reason"] = stopped;
        foreach (var f in result.Final) doc[f.Split] = JsonLines.Metrics(f.Score.Metrics);
        ctx.Out.WriteLine(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
