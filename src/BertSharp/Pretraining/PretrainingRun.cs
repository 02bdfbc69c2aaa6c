using BertSharp.Checkpoints;
using BertSharp.Data;
using BertSharp.Modeling;
using BertSharp.Reporting;
using BertSharp.Tokenization;
using BertSharp.Training;
using TorchSharp;

namespace BertSharp.Pretraining;

/// <summary>A pre-training run: the corpus, the vocabulary, the examples, the model size (or the model to continue),
/// the schedule and the run folder, with the defaults of `bert pretrain`.</summary>
public sealed record PretrainingRunOptions
{
    public const int DefaultVocabSize = 20256;
    /// <summary>The peak learning rate of a new model (the seed preset's), and of continued pre-training: run_mlm.py's
    /// (transformers' default), small enough to adapt a trained model without undoing it.</summary>
    public const double DefaultLearningRate = 2e-3, ContinuedLearningRate = 5e-5;
    public const long DefaultMaxSteps = 3000;
    public const string MaskedLm = "mlm", MaskedLmAndNextSentence = "mlm+nsp";

    /// <summary>The run folder.</summary>
    public string Output { get; init; } = "runs/pretrain";
    /// <summary>Continue the run in <see cref="Output"/> from its last checkpoint: options left at their defaults
    /// take the values the run was started with (its args.json).</summary>
    public bool Resume { get; init; }
    /// <summary>"wikitext-2" or a corpus file (.tokens, .txt, .jsonl, each optionally .gz).</summary>
    public string Corpus { get; init; } = "wikitext-2";
    /// <summary>A validation corpus file; for a file corpus without one, the last 5% of its documents.</summary>
    public string? ValidationCorpus { get; init; }
    public string? DataDir { get; init; }
    /// <summary>Continue pre-training this model (a folder or a Hub id, org/name[@revision]) on the corpus: domain
    /// adaptation as transformers' run_mlm.py does it, with the model's own vocabulary, lower-casing, config and weights,
    /// its MLM head included (a model without one, a bare BertModel, gets a new head whose decoder is tied to the word
    /// embeddings). Null: a new model of <see cref="ModelPreset"/>'s size.</summary>
    public string? Model { get; init; }
    /// <summary>"mlm" (masked LM alone, single-segment examples) or "mlm+nsp" (with next-sentence prediction, sentence
    /// pairs); null: mlm+nsp for a new model (Google BERT's recipe), mlm when continuing a <see cref="Model"/> (run_mlm.py's:
    /// next-sentence prediction adds little to adaptation and needs documents of several sentences; an NSP head the
    /// model has is kept unchanged).</summary>
    public string? Objective { get; init; }
    /// <summary>The size of a new model; null: "seed". Not with <see cref="Model"/>, which brings its own.</summary>
    public string? ModelPreset { get; init; }
    /// <summary>An existing vocab.txt; when null, a WordPiece vocabulary is learned from the training corpus.</summary>
    public string? Vocab { get; init; }
    /// <summary>The size of a learned vocabulary; null: <see cref="DefaultVocabSize"/>.</summary>
    public int? VocabSize { get; init; }
    public int VocabMinFrequency { get; init; } = 2;
    public bool LowerCase { get; init; } = true;
    public int? MaxSeqLength { get; init; }
    public int BatchSize { get; init; } = 128;
    public int MaxPredictionsPerSeq { get; init; } = 10;
    public double MaskedLmProb { get; init; } = 0.15;
    public double ShortSeqProb { get; init; } = 0.1;
    public bool WholeWordMask { get; init; }
    public bool StaticMask { get; init; }
    public int? MaxValidationExamples { get; init; } = 4096;
    /// <summary>Peak learning rate (AdamW; null: <see cref="DefaultLearningRate"/>, continuing a <see cref="Model"/>
    /// <see cref="ContinuedLearningRate"/>); warmup steps (default: 10% of the steps).</summary>
    public double? LearningRate { get; init; }
    public long? WarmupSteps { get; init; }
    /// <summary>Optimizer steps to train; default <see cref="DefaultMaxSteps"/>, unless <see cref="Epochs"/> is given.</summary>
    public long? MaxSteps { get; init; }
    public int? Epochs { get; init; }
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>Evaluate on the validation examples and checkpoint every N steps.</summary>
    public long EvalEvery { get; init; } = 250;
    /// <summary>Seeds torch, the examples, the masks and the data order; default 42.</summary>
    public long? Seed { get; init; }
    /// <summary>Intra-op CPU threads (default: libtorch's choice).</summary>
    public int? Threads { get; init; }
    /// <summary>"fp32", "bf16" (bfloat16 activations and matmuls; float32 weights, optimizer state and losses), or
    /// "auto" (<see cref="ComputeOptions.ResolvePrecision"/>: bf16 on a CPU with bfloat16 instructions); a run
    /// records what "auto" chose, and a resumed run keeps it.</summary>
    public string Precision { get; init; } = "auto";
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
}

/// <summary>What a pre-training run did: where it stands (<see cref="TrainingResult.Completed"/>, the best step and
/// its validation MLM loss, the last evaluation), the floor its MLM accuracy must beat, and the options as resolved.</summary>
public sealed record PretrainingResult(string RunFolder, TrainingResult Training, double MajorityBaselineAccuracy, double ValidationUnkRate, PretrainingRunOptions Options)
{
    public bool Completed => Training.Completed;
    /// <summary>Continued pre-training: the validation metrics of the starting model, before the first step (null for a
    /// new model or a resumed run).</summary>
    public IReadOnlyDictionary<string, double>? StartEvaluation { get; init; }
}

/// <summary>A pre-training run from start to finish: the run folder (<see cref="TrainingRun"/>), the corpus, the
/// vocabulary, the examples, the model, and training.</summary>
public static class PretrainingRun
{
    /// <summary>Runs (or, with <see cref="PretrainingRunOptions.Resume"/>, continues) a pre-training run; returns
    /// when it completes or <paramref name="cancel"/> fires (its state then saved for a resume).</summary>
    public static PretrainingResult Run(PretrainingRunOptions o, TrainingEvents? events = null, CancellationToken cancel = default)
    {
        using var run = TrainingRun.Open(o.Output, o.Resume);
        if (run.SavedArgs is { } saved) o = Args.Merge(o, new PretrainingRunOptions(), saved, run.Folder.ArgsFile);
        o = o with { Precision = ComputeOptions.ResolvePrecision(o.Precision) };
        long seed = o.Seed ?? 42;
        TrainingRun.Configure(o.Threads, o.Precision);
        var p = Prepare(o, run.Folder.Root, seed, o.Resume, events?.Message);
        try
        {
            string model = o.Model is null ? $"{o.ModelPreset ?? "seed"} preset" : $"{o.Model} ({p.Task.Model.Architecture})";
            events?.Message?.Invoke($"model: {model}, {p.Config.NumHiddenLayers} layers, hidden {p.Config.HiddenSize}, vocab {p.Config.VocabSize}; objective {p.Objective}; validation [UNK] rate {p.ValidationUnkRate:P2}");
            long? maxSteps = o.MaxSteps ?? (o.Epochs is null ? PretrainingRunOptions.DefaultMaxSteps : null);
            double lr = o.LearningRate ?? (o.Model is null ? PretrainingRunOptions.DefaultLearningRate : PretrainingRunOptions.ContinuedLearningRate);
            var training = new TrainingOptions
            {
                OutputDir = run.Folder.Root, LearningRate = lr, WarmupSteps = o.WarmupSteps, MaxSteps = maxSteps,
                Epochs = o.Epochs ?? 1, GradientAccumulation = o.GradientAccumulation, EvalEvery = o.EvalEvery, Seed = seed,
            };
            long total = TrainingRun.TotalSteps(p.Task, training);
            var resolved = o with
            {
                Seed = seed, MaxSteps = maxSteps, MaxSeqLength = p.MaxSeqLength, LearningRate = lr, Objective = p.Objective,
                ModelPreset = o.Model is null ? o.ModelPreset ?? "seed" : null,
                VocabSize = o.Model is null ? o.VocabSize ?? PretrainingRunOptions.DefaultVocabSize : null,
                WarmupSteps = o.WarmupSteps ?? (long)Math.Round(total * training.WarmupRatio),
            };
            run.WriteArgs(Args.ToJson(resolved));
            IReadOnlyDictionary<string, double>? start = null;
            if (o.Model != null && !o.Resume)
            {
                start = EvaluateModel(p.Task);
                events?.Message?.Invoke($"starting model: validation MLM loss {start["mlm_loss"]:F4} (perplexity {start["perplexity"]:F1}), MLM accuracy {start["mlm_accuracy"]:P2}");
            }
            var result = run.Train(p.Task, training, p.Task.NextSentencePrediction ? PlotSpec.Pretraining : PlotSpec.MaskedLm, events, cancel);
            return new PretrainingResult(run.Folder.Root, result, p.MajorityBaselineAccuracy, p.ValidationUnkRate, resolved) { StartEvaluation = start };
        }
        finally
        {
            p.Task.Model.Dispose();
        }
    }

    /// <summary>The args.json of pre-training runs: the options of `bert pretrain` under their names.</summary>
    public static RunArgs<PretrainingRunOptions> Args { get; } = new RunArgs<PretrainingRunOptions>()
        .Add("--corpus", o => o.Corpus, (o, v) => o with { Corpus = v })
        .Add("--validation-corpus", o => o.ValidationCorpus, (o, v) => o with { ValidationCorpus = v })
        .Add("--data-dir", o => o.DataDir, (o, v) => o with { DataDir = v })
        .Add("--output", o => o.Output, (o, v) => o with { Output = v })
        .Add("--model", o => o.Model, (o, v) => o with { Model = v })
        .Add("--objective", o => o.Objective, (o, v) => o with { Objective = v })
        .Add("--model-preset", o => o.ModelPreset, (o, v) => o with { ModelPreset = v })
        .Add("--vocab", o => o.Vocab, (o, v) => o with { Vocab = v })
        .Add("--vocab-size", o => o.VocabSize, (o, v) => o with { VocabSize = v })
        .Add("--cased", o => !o.LowerCase, (o, v) => o with { LowerCase = !v })
        .Add("--max-seq-length", o => o.MaxSeqLength, (o, v) => o with { MaxSeqLength = v })
        .Add("--batch-size", o => o.BatchSize, (o, v) => o with { BatchSize = v })
        .Add("--gradient-accumulation", o => o.GradientAccumulation, (o, v) => o with { GradientAccumulation = v })
        .Add("--max-steps", o => o.MaxSteps, (o, v) => o with { MaxSteps = v })
        .Add("--epochs", o => o.Epochs, (o, v) => o with { Epochs = v })
        .Add("--learning-rate", o => o.LearningRate, (o, v) => o with { LearningRate = v })
        .Add("--warmup-steps", o => o.WarmupSteps, (o, v) => o with { WarmupSteps = v })
        .Add("--eval-every", o => o.EvalEvery, (o, v) => o with { EvalEvery = v })
        .Add("--max-predictions-per-seq", o => o.MaxPredictionsPerSeq, (o, v) => o with { MaxPredictionsPerSeq = v })
        .Add("--whole-word-mask", o => o.WholeWordMask, (o, v) => o with { WholeWordMask = v })
        .Add("--max-eval-examples", o => o.MaxValidationExamples, (o, v) => o with { MaxValidationExamples = v })
        .Add("--static-mask", o => o.StaticMask, (o, v) => o with { StaticMask = v })
        .Add("--threads", o => o.Threads, (o, v) => o with { Threads = v })
        .Add("--seed", o => o.Seed, (o, v) => o with { Seed = v })
        .Add("--precision", o => o.Precision, (o, v) => o with { Precision = v ?? "fp32" });

    /// <param name="Objective">"mlm" or "mlm+nsp", as resolved</param>
    public sealed record Prepared(PretrainingTask Task, BertTokenizer Tokenizer, BertConfig Config, int TrainExamples,
        int ValidationExamples, double ValidationUnkRate, double MajorityBaselineAccuracy, string? BuiltVocabReport, int MaxSeqLength, string Objective);

    public static Prepared Prepare(PretrainingRunOptions o, string outputDir, long seed, bool resume, Action<string>? log = null)
    {
        string objective = o.Objective ?? (o.Model is null ? PretrainingRunOptions.MaskedLmAndNextSentence : PretrainingRunOptions.MaskedLm);
        if (objective is not (PretrainingRunOptions.MaskedLm or PretrainingRunOptions.MaskedLmAndNextSentence))
            throw new BertSharpException($"objective '{objective}': choose {PretrainingRunOptions.MaskedLm} or {PretrainingRunOptions.MaskedLmAndNextSentence}") { Parameters = ["objective"] };
        bool nsp = objective == PretrainingRunOptions.MaskedLmAndNextSentence;
        string? startDir = o.Model is null ? null : StartingFolder(o);
        var (trainDocs, validDocs) = ReadCorpus(o, log);
        BertTokenizer tokenizer;
        BertConfig config;
        string? vocabReport = null;
        if (startDir != null)
        {
            config = ModelFolder.ReadConfig(startDir);
            config.Validate(Path.Combine(startDir, ModelFolder.ConfigFile));
            config.Extra.Remove("bertsharp_task");   // a fine-tuned folder continued: the result is not a task model
            tokenizer = BertTokenizer.FromFolder(startDir);
        }
        else
        {
            // The checkpoint a resume continues from (after a crash it may be last.new or last.old).
            var resumeCheckpoint = resume ? RunFolder.FindCheckpoint(new RunFolder(outputDir).LastCheckpoint) : null;
            var resumeVocab = Path.Combine(resumeCheckpoint ?? "", BertTokenizer.VocabFileName);
            if (o.Vocab != null)
                tokenizer = BertTokenizer.FromVocabFile(o.Vocab, o.LowerCase);
            else if (resumeCheckpoint != null && File.Exists(resumeVocab))
                tokenizer = BertTokenizer.FromVocabFile(resumeVocab, o.LowerCase);
            else
            {
                int size = o.VocabSize ?? PretrainingRunOptions.DefaultVocabSize;
                log?.Invoke($"learning a {size}-token WordPiece vocabulary from {trainDocs.Count} documents");
                var vocab = VocabularyBuilder.Learn(trainDocs.SelectMany(d => d.Sentences), new WordPieceTrainerOptions { VocabSize = size, MinFrequency = o.VocabMinFrequency }, o.LowerCase);
                tokenizer = new BertTokenizer(vocab, new BertTokenizerOptions { LowerCase = o.LowerCase });
                vocabReport = $"vocabulary: {vocab.Count} tokens learned";
            }
            config = BertConfig.FromPreset(o.ModelPreset ?? "seed", tokenizer.VocabSize);
        }
        int maxSeq = o.MaxSeqLength ?? Math.Min(128, config.MaxPositionEmbeddings);
        if (maxSeq > config.MaxPositionEmbeddings)
            throw new BertSharpException($"maxSeqLength {maxSeq} exceeds the {(o.Model is null ? $"{o.ModelPreset ?? "seed"} preset" : o.Model + " model")}'s max_position_embeddings {config.MaxPositionEmbeddings}") { Parameters = ["maxSeqLength"] };

        log?.Invoke("tokenizing");
        var trainIds = Tokenize(tokenizer, trainDocs);
        var validIds = Tokenize(tokenizer, validDocs);
        double unkRate = UnkRate(validIds, tokenizer.UnkId);

        var data = new PretrainingDataOptions
        {
            MaxSeqLength = maxSeq, MaxPredictionsPerSeq = o.MaxPredictionsPerSeq, MaskedLmProb = o.MaskedLmProb,
            ShortSeqProb = o.ShortSeqProb, WholeWordMask = o.WholeWordMask,
        };
        var train = nsp ? PretrainingExamples.CreateNspExamples(trainIds, data, tokenizer.ClsId, tokenizer.SepId, seed)
            : PretrainingExamples.CreateMlmExamples(trainIds, data, tokenizer.ClsId, tokenizer.SepId);
        var valid = nsp ? PretrainingExamples.CreateNspExamples(validIds, data, tokenizer.ClsId, tokenizer.SepId, seed + 1)
            : PretrainingExamples.CreateMlmExamples(validIds, data, tokenizer.ClsId, tokenizer.SepId);
        if (o.MaxValidationExamples is int cap && valid.Count > cap)
        {
            var pick = Enumerable.Range(0, valid.Count).ToArray();
            var rng = SplitMix.For(seed, 0x53554253 /* "SUBS" */);
            rng.Shuffle(pick);
            valid = pick.Take(cap).Order().Select(i => valid[i]).ToList();
        }
        log?.Invoke($"examples: {train.Count} train, {valid.Count} validation (max_seq_length {maxSeq})");

        TorchRuntime.Seed(seed);
        var model = startDir is null
            ? (BertForPreTraining)ModelFolder.NewModel(nsp ? "BertForPreTraining" : "BertForMaskedLM", config, ComputeOptions.ForPrecision(o.Precision), o.Device)
            : LoadStartingModel(startDir, config, nsp, o, log);
        PretrainingTask task;
        try
        {
            task = new PretrainingTask(model, tokenizer, train, valid, data, o.BatchSize, seed, o.StaticMask, nextSentencePrediction: nsp)
            {
                VocabFile = startDir is null ? null : Path.Combine(startDir, BertTokenizer.VocabFileName),
            };
        }
        catch { model.Dispose(); throw; }
        double baseline = MajorityBaseline(trainIds, task.ValidationLabels);
        return new Prepared(task, tokenizer, config, train.Count, valid.Count, unkRate, baseline, vocabReport, maxSeq, objective);
    }

    /// <summary>The folder of <see cref="PretrainingRunOptions.Model"/> (a Hub id fetched), after refusing the options
    /// that would define a new model: the checkpoint brings its vocabulary, lower-casing and size.</summary>
    static string StartingFolder(PretrainingRunOptions o)
    {
        string? clash = o.ModelPreset != null ? "modelPreset" : o.Vocab != null ? "vocab" : o.VocabSize != null ? "vocabSize" : !o.LowerCase ? "cased" : null;
        if (clash != null)
            throw new BertSharpException($"{clash} is for pre-training from scratch; model {o.Model} brings its own size, vocabulary and lower-casing") { Parameters = [clash, "model"] };
        return Hub.ModelSource.Resolve(o.Model!);
    }

    /// <summary>The starting model with the checkpoint's weights, its heads included: an MLM head it lacks is new (the
    /// decoder is always the word embeddings), an NSP head it has is kept whatever the objective (trained only with
    /// mlm+nsp), so the result has the heads it started with.</summary>
    static BertForPreTraining LoadStartingModel(string dir, BertConfig config, bool nsp, PretrainingRunOptions o, Action<string>? log)
    {
        var path = ModelFolder.WeightsPath(dir);
        var weights = ModelFolder.ReadWeights(path);
        try
        {
            bool hasMlm = weights.Keys.Any(k => k.StartsWith("cls.predictions."));
            bool hasNsp = weights.Keys.Any(k => k.StartsWith("cls.seq_relationship."));
            var model = (BertForPreTraining)ModelFolder.NewModel(nsp || hasNsp ? "BertForPreTraining" : "BertForMaskedLM", config, ComputeOptions.ForPrecision(o.Precision), o.Device);
            try
            {
                var report = ModelFolder.LoadStateDict(model, weights, path);
                if (!hasMlm)
                    log?.Invoke($"warning: {path} has no masked-LM head (no cls.predictions.*: the checkpoint is a {config.Architectures.FirstOrDefault() ?? "BertModel"}); " +
                        "a new one is initialized, its decoder tied to the word embeddings, so the MLM loss starts high");
                if (nsp && !hasNsp) log?.Invoke($"warning: {path} has no next-sentence head (no cls.seq_relationship.*); a new one is initialized");
                // The heads are reported above; anything else missing or left over, as transformers reports it.
                foreach (var m in (report with { NewlyInitialized = report.NewlyInitialized.Where(k => !k.StartsWith("cls.")).ToList() }).Messages())
                    log?.Invoke("warning: " + m);
                return model;
            }
            catch { model.Dispose(); throw; }
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    /// <summary>The validation metrics of the task's model as it stands (eval mode, no gradients).</summary>
    static IReadOnlyDictionary<string, double> EvaluateModel(PretrainingTask task)
    {
        task.Model.eval();
        using var _ = torch.no_grad();
        return task.Evaluate();
    }

    public static (List<Document> Train, List<Document> Valid) ReadCorpus(PretrainingRunOptions o, Action<string>? log)
    {
        if (o.Corpus.Equals("wikitext-2", StringComparison.OrdinalIgnoreCase))
        {
            var dl = new DatasetDownloadOptions { Progress = new DownloadProgressBar() };
            var trainPath = WikiText2.Locate(o.DataDir, "train", dl);
            var validPath = o.ValidationCorpus ?? WikiText2.Locate(o.DataDir, "valid", dl);
            log?.Invoke($"corpus: {trainPath}; validation: {validPath}");
            return (CorpusReader.Read(trainPath).ToList(), CorpusReader.Read(validPath).ToList());
        }
        var docs = CorpusReader.Read(o.Corpus).ToList();
        if (o.ValidationCorpus != null) return (docs, CorpusReader.Read(o.ValidationCorpus).ToList());
        if (docs.Count < 4) throw new BertSharpException($"{o.Corpus}: {docs.Count} documents; pre-training needs at least 4 (or give validationCorpus)") { Parameters = ["validationCorpus"] };
        int held = Math.Max(2, docs.Count / 20);
        log?.Invoke($"corpus: {o.Corpus}; validation: its last {held} documents");
        return (docs.Take(docs.Count - held).ToList(), docs.Skip(docs.Count - held).ToList());
    }

    /// <summary>Documents → sentences → WordPiece ids, in parallel, order kept; empty sentences dropped.</summary>
    public static List<IReadOnlyList<int[]>> Tokenize(BertTokenizer tokenizer, IReadOnlyList<Document> docs)
    {
        var result = new IReadOnlyList<int[]>[docs.Count];
        Parallel.For(0, docs.Count, d =>
        {
            result[d] = docs[d].Sentences.Select(tokenizer.Encode).Where(ids => ids.Length > 0).ToList();
        });
        return result.ToList();
    }

    public static double UnkRate(IEnumerable<IReadOnlyList<int[]>> docs, int unkId)
    {
        long total = 0, unk = 0;
        foreach (var d in docs) foreach (var s in d) { total += s.Length; foreach (var id in s) if (id == unkId) unk++; }
        return total == 0 ? 0 : (double)unk / total;
    }

    /// <summary>MLM accuracy of always predicting the corpus's most frequent token: the floor a model must beat.</summary>
    static double MajorityBaseline(IEnumerable<IReadOnlyList<int[]>> trainDocs, IReadOnlyList<int> validationLabels)
    {
        var counts = new Dictionary<int, long>();
        foreach (var d in trainDocs) foreach (var s in d) foreach (var id in s) counts[id] = counts.GetValueOrDefault(id) + 1;
        if (counts.Count == 0 || validationLabels.Count == 0) return 0;
        int top = counts.MaxBy(kv => kv.Value).Key;
        return validationLabels.Count(l => l == top) / (double)validationLabels.Count;
    }
}
