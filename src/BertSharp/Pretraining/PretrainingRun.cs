using BertSharp.Checkpoints;
using BertSharp.Data;
using BertSharp.Modeling;
using BertSharp.Reporting;
using BertSharp.Tokenization;
using BertSharp.Training;
using TorchSharp;

namespace BertSharp.Pretraining;

/// <summary>A pre-training run: the corpus, the vocabulary, the examples, the model size, the schedule and the run
/// folder, with the defaults of `bert pretrain`.</summary>
public sealed record PretrainingRunOptions
{
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
    public string ModelPreset { get; init; } = "seed";
    /// <summary>An existing vocab.txt; when null, a WordPiece vocabulary is learned from the training corpus.</summary>
    public string? Vocab { get; init; }
    public int VocabSize { get; init; } = 20256;
    public int VocabMinFrequency { get; init; } = 2;
    public bool LowerCase { get; init; } = true;
    public int? MaxSeqLength { get; init; }
    public int BatchSize { get; init; } = 512;
    public int MaxPredictionsPerSeq { get; init; } = 10;
    public double MaskedLmProb { get; init; } = 0.15;
    public double ShortSeqProb { get; init; } = 0.1;
    public bool WholeWordMask { get; init; }
    public bool StaticMask { get; init; }
    public int? MaxValidationExamples { get; init; } = 4096;
    /// <summary>Peak learning rate (AdamW); warmup steps (default: 10% of the steps).</summary>
    public double LearningRate { get; init; } = 1e-3;
    public long? WarmupSteps { get; init; }
    /// <summary>Optimizer steps to train; default 500, unless <see cref="Epochs"/> is given.</summary>
    public long? MaxSteps { get; init; }
    public int? Epochs { get; init; }
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>Evaluate on the validation examples and checkpoint every N steps.</summary>
    public long EvalEvery { get; init; } = 25;
    /// <summary>Seeds torch, the examples, the masks and the data order; default 42.</summary>
    public long? Seed { get; init; }
    /// <summary>Intra-op CPU threads (default: libtorch's choice).</summary>
    public int? Threads { get; init; }
    /// <summary>"fp32" or "bf16" (bfloat16 activations and matmuls; float32 weights, optimizer state and losses).</summary>
    public string Precision { get; init; } = "fp32";
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
}

/// <summary>What a pre-training run did: where it stands (<see cref="TrainingResult.Completed"/>, the best step and
/// its validation MLM loss, the last evaluation), the floor its MLM accuracy must beat, and the options as resolved.</summary>
public sealed record PretrainingResult(string RunFolder, TrainingResult Training, double MajorityBaselineAccuracy, double ValidationUnkRate, PretrainingRunOptions Options)
{
    public bool Completed => Training.Completed;
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
        long seed = o.Seed ?? 42;
        TrainingRun.Configure(o.Threads, o.Precision);
        var p = Prepare(o, run.Folder.Root, seed, o.Resume, events?.Message);
        try
        {
            events?.Message?.Invoke($"model: {o.ModelPreset} preset, {p.Config.NumHiddenLayers} layers, hidden {p.Config.HiddenSize}, vocab {p.Config.VocabSize}; validation [UNK] rate {p.ValidationUnkRate:P2}");
            long? maxSteps = o.MaxSteps ?? (o.Epochs is null ? 500 : null);
            var training = new TrainingOptions
            {
                OutputDir = run.Folder.Root, LearningRate = o.LearningRate, WarmupSteps = o.WarmupSteps, MaxSteps = maxSteps,
                Epochs = o.Epochs ?? 1, GradientAccumulation = o.GradientAccumulation, EvalEvery = o.EvalEvery, Seed = seed,
            };
            long total = TrainingRun.TotalSteps(p.Task, training);
            var resolved = o with
            {
                Seed = seed, MaxSteps = maxSteps, MaxSeqLength = p.MaxSeqLength,
                WarmupSteps = o.WarmupSteps ?? (long)Math.Round(total * training.WarmupRatio),
            };
            run.WriteArgs(Args.ToJson(resolved));
            var result = run.Train(p.Task, training, PlotSpec.Pretraining, events, cancel);
            return new PretrainingResult(run.Folder.Root, result, p.MajorityBaselineAccuracy, p.ValidationUnkRate, resolved);
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

    public sealed record Prepared(PretrainingTask Task, BertTokenizer Tokenizer, BertConfig Config, int TrainExamples,
        int ValidationExamples, double ValidationUnkRate, double MajorityBaselineAccuracy, string? BuiltVocabReport, int MaxSeqLength);

    public static Prepared Prepare(PretrainingRunOptions o, string outputDir, long seed, bool resume, Action<string>? log = null)
    {
        var (trainDocs, validDocs) = ReadCorpus(o, log);
        BertTokenizer tokenizer;
        string? vocabReport = null;
        // The checkpoint a resume continues from (after a crash it may be last.new or last.old).
        var resumeCheckpoint = resume ? RunFolder.FindCheckpoint(new RunFolder(outputDir).LastCheckpoint) : null;
        var resumeVocab = Path.Combine(resumeCheckpoint ?? "", BertTokenizer.VocabFileName);
        if (o.Vocab != null)
            tokenizer = BertTokenizer.FromVocabFile(o.Vocab, o.LowerCase);
        else if (resumeCheckpoint != null && File.Exists(resumeVocab))
            tokenizer = BertTokenizer.FromVocabFile(resumeVocab, o.LowerCase);
        else
        {
            log?.Invoke($"learning a {o.VocabSize}-token WordPiece vocabulary from {trainDocs.Count} documents");
            var vocab = VocabularyBuilder.Learn(trainDocs.SelectMany(d => d.Sentences), new WordPieceTrainerOptions { VocabSize = o.VocabSize, MinFrequency = o.VocabMinFrequency }, o.LowerCase);
            tokenizer = new BertTokenizer(vocab, new BertTokenizerOptions { LowerCase = o.LowerCase });
            vocabReport = $"vocabulary: {vocab.Count} tokens learned";
        }
        var config = BertConfig.FromPreset(o.ModelPreset, tokenizer.VocabSize);
        int maxSeq = o.MaxSeqLength ?? Math.Min(128, config.MaxPositionEmbeddings);
        if (maxSeq > config.MaxPositionEmbeddings)
            throw new BertSharpException($"maxSeqLength {maxSeq} exceeds the {o.ModelPreset} preset's max_position_embeddings {config.MaxPositionEmbeddings}") { Parameters = ["maxSeqLength"] };

        log?.Invoke("tokenizing");
        var trainIds = Tokenize(tokenizer, trainDocs);
        var validIds = Tokenize(tokenizer, validDocs);
        double unkRate = UnkRate(validIds, tokenizer.UnkId);

        var data = new PretrainingDataOptions
        {
            MaxSeqLength = maxSeq, MaxPredictionsPerSeq = o.MaxPredictionsPerSeq, MaskedLmProb = o.MaskedLmProb,
            ShortSeqProb = o.ShortSeqProb, WholeWordMask = o.WholeWordMask,
        };
        var train = PretrainingExamples.CreateNspExamples(trainIds, data, tokenizer.ClsId, tokenizer.SepId, seed);
        var valid = PretrainingExamples.CreateNspExamples(validIds, data, tokenizer.ClsId, tokenizer.SepId, seed + 1);
        if (o.MaxValidationExamples is int cap && valid.Count > cap)
        {
            var pick = Enumerable.Range(0, valid.Count).ToArray();
            var rng = SplitMix.For(seed, 0x53554253 /* "SUBS" */);
            rng.Shuffle(pick);
            valid = pick.Take(cap).Order().Select(i => valid[i]).ToList();
        }
        log?.Invoke($"examples: {train.Count} train, {valid.Count} validation (max_seq_length {maxSeq})");

        TorchRuntime.Seed(seed);
        var model = (BertForPreTraining)ModelFolder.NewModel("BertForPreTraining", config, ComputeOptions.ForPrecision(o.Precision), o.Device);
        var task = new PretrainingTask(model, tokenizer, train, valid, data, o.BatchSize, seed, o.StaticMask);
        double baseline = MajorityBaseline(trainIds, task.ValidationLabels);
        return new Prepared(task, tokenizer, config, train.Count, valid.Count, unkRate, baseline, vocabReport, maxSeq);
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
