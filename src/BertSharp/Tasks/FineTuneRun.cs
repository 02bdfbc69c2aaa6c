using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;

namespace BertSharp.Tasks;

/// <summary>What a fine-tuning run did: where it stands (<see cref="TrainingResult.Completed"/>, the best step and
/// its metric) and, when it completed, the best model's final scores on dev and test; the options as resolved.</summary>
public sealed record FineTuneResult(string RunFolder, TrainingResult Training, IReadOnlyList<FineTuneRun.FinalScore> Final, FineTuneOptions Options)
{
    public bool Completed => Training.Completed;
}

/// <summary>
/// A fine-tuning run of any task family from start to finish: the run folder (<see cref="TrainingRun"/>: lock,
/// resume, args.json), the data, the model and the task, training, and the final scores of the best model on dev
/// and test with their files in the run folder. From C#, with the CLI's defaults:
/// <code>
/// var result = FineTuneRun.Run(new FineTuneOptions { Task = "classify", Model = "runs/pretrain", Train = "train.tsv", Dev = "dev.tsv", Output = "runs/snli" });
/// </code>
/// </summary>
public static class FineTuneRun
{
    /// <summary>Runs (or, with <see cref="FineTuneOptions.Resume"/>, continues) a fine-tuning run; returns when it
    /// completes or <paramref name="cancel"/> fires (its state then saved for a resume).</summary>
    public static FineTuneResult Run(FineTuneOptions options, TrainingEvents? events = null, CancellationToken cancel = default) =>
        TaskFamily.Named(options.Task).FineTune(options, events, cancel);

    internal static FineTuneResult Run<TExample>(TaskFamily<TExample> family, FineTuneOptions o, TrainingEvents? events, CancellationToken cancel)
    {
        if (!o.Resume && o.Train is null) throw new BertSharpException("train is required (the training data file)") { Parameters = ["train"] };
        using var run = TrainingRun.Open(o.OutputFolder, o.Resume);
        var args = family.RunArgs;
        if (run.SavedArgs is { } saved) o = args.Merge(o, new FineTuneOptions { Task = o.Task }, saved, run.Folder.ArgsFile);
        long seed = o.Seed ?? 42;
        TrainingRun.Configure(o.Threads, o.Precision);
        var p = Prepare(family, o, seed, events?.Message);
        try
        {
            var (lr, epochs) = (o.LearningRate ?? p.DefaultLearningRate, o.Epochs ?? p.DefaultEpochs);
            string metric = MetricSelection.Resolve(o.MetricForBestModel, p.Task.SelectionMetric, p.Task.Metrics);
            var resolved = family.Resolved(o with
            {
                Output = o.OutputFolder, Seed = seed, LearningRate = lr, Epochs = epochs, MaxSeqLength = p.Model.MaxSeqLength, EvalBatchSize = p.Model.BatchSize,
                MetricForBestModel = metric,
                ModelPreset = o.RandomInit && o.Model is null ? o.ModelPreset ?? "seed" : o.ModelPreset,
            }, p.Model);
            run.WriteArgs(args.ToJson(resolved));
            var training = new TrainingOptions
            {
                OutputDir = run.Folder.Root, LearningRate = lr, WarmupRatio = o.WarmupRatio, WeightDecay = o.WeightDecay, MaxSteps = o.MaxSteps,
                Epochs = epochs, GradientAccumulation = o.GradientAccumulation, EvalEvery = o.EvalEvery, Seed = seed,
                SelectionMetric = metric, EarlyStoppingPatience = o.EarlyStoppingPatience,
            };
            string stopping = o.EarlyStoppingPatience is int patience ? $", stopping after {patience} evaluations without a better one" : "";
            events?.Message?.Invoke($"training: {TrainingRun.TotalSteps(p.Task, training)} steps ({epochs} epochs of {p.Task.BatchesPerEpoch} batches of {o.BatchSize}), learning rate {lr:G3}, max_seq_length {p.Model.MaxSeqLength}; best model by dev {metric}{stopping}");
            var result = run.Train(p.Task, training, p.Model.Plots, events, cancel);
            if (!result.Completed) return new FineTuneResult(run.Folder.Root, result, [], resolved);
            var final = FinalEvaluation(p, run.Folder.Root, bestIsLive: result.BestStep == result.Step && p.Task.LastScore != null);
            return new FineTuneResult(run.Folder.Root, result, final, resolved);
        }
        finally
        {
            p.Model.Dispose();
        }
    }

    public sealed record Prepared<TExample>(
        TaskFamily<TExample> Family, TaskModel<TExample> Model, FineTuningTask<TExample> Task,
        ExampleSet<TExample> Train, (string Name, ExampleSet<TExample> Set) Dev, (string Name, ExampleSet<TExample> Set)? Test,
        IReadOnlyList<string> Notes, double DefaultLearningRate, int DefaultEpochs);

    /// <summary>Everything before training: the data, the model (seeded by <paramref name="seed"/>), the task model
    /// and its training task.</summary>
    public static Prepared<TExample> Prepare<TExample>(TaskFamily<TExample> family, FineTuneOptions o, long seed, Action<string>? log = null)
    {
        var notes = new List<string>();
        void Note(string s) { notes.Add(s); log?.Invoke(s); }

        if (o.Train is null) throw new BertSharpException("train is required (the training data file)") { Parameters = ["train"] };
        if (o.SplitArticles != null && o.Dev != null)
            throw new BertSharpException("give either dev or splitArticles (which evaluates on the training file's remaining articles), not both") { Parameters = ["dev", "splitArticles"] };
        if (family.Task != Classification.ClassificationModel.Task && (o.Data.MultiLabel || o.ClassWeights != null || o.ClassWeightValues != null))
            throw new BertSharpException($"multiLabel and classWeights go with classification, not task '{family.Task}'") { Parameters = ["multiLabel", "classWeights"] };
        if (family.Task is not (Classification.ClassificationModel.Task or Similarity.SimilarityModel.Task)
            && (o.Truncate || o.WindowAggregation != WindowAggregation.Mean || (o.DocStride != null && family.Task != QuestionAnswering.QuestionAnsweringModel.Task)))
            throw new BertSharpException($"truncate, windowAggregation and docStride go with classification and similarity (docStride also with question answering), not task '{family.Task}'") { Parameters = ["truncate", "windowAggregation", "docStride"] };
        var data = o.Data with { SplitArticles = o.SplitArticles };
        string trainPath = o.Train;
        var train = family.Read(trainPath, data with { Split = DataSplit.Train, MaxExamples = o.MaxTrainExamples });
        foreach (var n in train.Notes) Note(n);
        var evalData = data with { MaxExamples = o.MaxEvalExamples };
        var dev = ReadEval(family, o.Dev, trainPath, train.HasBuiltInSplit, DataSplit.Dev, evalData, Note)
            ?? throw new BertSharpException($"{trainPath}: give dev (a file to evaluate on each epoch); {family.NoDevHint}") { Parameters = ["dev", "splitArticles"] };
        var test = ReadEval(family, o.Test, trainPath, train.HasBuiltInSplit && family.SplitHasTestPart, DataSplit.Test, evalData, Note);
        family.CheckData(train, dev.Set, o);

        TorchRuntime.Seed(seed);
        string? modelDir = o.Model is null ? null : Hub.ModelSource.Resolve(o.Model);   // a folder, or a Hub id's snapshot
        var (model, tokenizer) = CreateModel(family, o, modelDir, train.Examples, Note);
        int maxSeq = o.MaxSeqLength ?? family.DefaultMaxSeqLength(model.Config);
        tokenizer = new BertTokenizer(tokenizer.Vocabulary, tokenizer.Options with { ModelMaxLength = maxSeq });
        TaskModel<TExample> taskModel;
        try
        {
            taskModel = family.Create(model, tokenizer, maxSeq, folder: null);
            family.Apply(taskModel, o with { Model = modelDir }, train.Examples);
            taskModel.PrepareTraining(train.Examples, dev.Set.Examples);
        }
        catch { model.Dispose(); throw; }
        taskModel.BatchSize = o.EvalBatchSize ?? family.DefaultEvalBatchSize(o.BatchSize);
        var features = taskModel.Encode(train.Examples);
        foreach (var n in taskModel.EncodingNotes(train.Examples, features, dev.Set.Examples)) Note(n);
        var task = new FineTuningTask<TExample>(taskModel, features, dev.Set.Examples, o.BatchSize, seed, o.GroupByLength);
        var (lr, epochs) = family.DefaultSchedule(model.Config);
        return new Prepared<TExample>(family, taskModel, task, train, dev, test, notes, lr, epochs);
    }

    static (string Name, ExampleSet<T> Set)? ReadEval<T>(TaskFamily<T> family, string? path, string trainPath, bool builtIn, DataSplit split, DataFileOptions data, Action<string> note)
    {
        if (path is null && !builtIn) return null;
        var file = path ?? trainPath;
        var set = family.Read(file, data with { Split = split, SplitArticles = path is null ? data.SplitArticles : null });
        foreach (var n in set.Notes) note(n);
        return (set.HasBuiltInSplit ? $"{file} ({split.ToString().ToLowerInvariant()} part)" : file, set);
    }

    /// <summary>The model to fine-tune: a folder's weights with a new head (reported as newly initialized; a head of
    /// another size is re-initialized), or random weights of the folder's or a preset's size.</summary>
    static (BertWithHead, BertTokenizer) CreateModel<T>(TaskFamily<T> family, FineTuneOptions o, string? modelDir, IReadOnlyList<T> train, Action<string> note)
    {
        if (!o.RandomInit)
        {
            if (o.Model is null) throw new BertSharpException("give model (a pre-trained model folder), or randomInit with modelPreset and vocab") { Parameters = ["model", "randomInit", "modelPreset", "vocab"] };
            if (o.ModelPreset != null || o.Vocab != null) throw new BertSharpException("modelPreset and vocab go with randomInit; a model folder brings its own") { Parameters = ["modelPreset", "vocab", "randomInit", "model"] };
            var (model, report) = ModelFolder.Load(modelDir!, family.Architecture, c => family.Configure(c, train), newHead: true, compute: ComputeOptions.ForPrecision(o.Precision), device: o.Device);
            model.train();
            note($"model: {o.Model} ({DescribeSize(model.Config)})");
            foreach (var m in report.Messages()) note(m);
            return (model, BertTokenizer.FromFolder(modelDir!));
        }
        BertConfig config;
        BertTokenizer tokenizer;
        if (o.Model != null)
        {
            if (o.ModelPreset != null || o.Vocab != null) throw new BertSharpException("with randomInit, give either model (its config and vocabulary) or modelPreset and vocab") { Parameters = ["randomInit", "model", "modelPreset", "vocab"] };
            config = ModelFolder.ReadConfig(modelDir!);
            tokenizer = BertTokenizer.FromFolder(modelDir!);
        }
        else
        {
            if (o.Vocab is null) throw new BertSharpException("randomInit needs vocab (a vocab.txt) with modelPreset, or model") { Parameters = ["randomInit", "vocab", "modelPreset", "model"] };
            tokenizer = BertTokenizer.FromVocabFile(o.Vocab, o.LowerCase);
            config = BertConfig.FromPreset(o.ModelPreset ?? "seed", tokenizer.VocabSize);
        }
        family.Configure(config, train);
        config.Validate();
        var random = ModelFolder.NewModel(family.Architecture, config, ComputeOptions.ForPrecision(o.Precision), o.Device);
        long count = random.parameters().Sum(p => p.numel());
        note($"model: random initialization, {(o.Model != null ? $"the size of {o.Model}" : $"preset {o.ModelPreset ?? "seed"}")} ({DescribeSize(config)}); all {count:N0} parameters newly initialized");
        return (random, tokenizer);
    }

    static string DescribeSize(BertConfig c) =>
        $"{c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, vocab {c.VocabSize}, max positions {c.MaxPositionEmbeddings}";

    /// <summary>The final scores of the best model on one evaluation set.</summary>
    public sealed record FinalScore(string Split, string Data, DatasetScore Score, string PredictionsFile);

    /// <summary>
    /// Scores the best model (the run folder's root, loaded into the task model unless <paramref name="bestIsLive"/>:
    /// the live model is the best, and its last evaluation is the dev score) on dev and test, and writes the task's
    /// final files into the run folder (predictions_dev.jsonl / predictions_test.jsonl and results.json).
    /// </summary>
    public static IReadOnlyList<FinalScore> FinalEvaluation<T>(Prepared<T> p, string runDir, bool bestIsLive = false)
    {
        var best = Path.Combine(runDir, ModelFolder.SafeTensorsFileName);
        if (!bestIsLive && File.Exists(best)) p.Model.LoadSaved(runDir);
        var scores = new List<(string Split, string Data, DatasetScore Score)>();
        var sets = new List<(string Split, string Name, ExampleSet<T> Set)> { ("dev", p.Dev.Name, p.Dev.Set) };
        if (p.Test is { } t) sets.Add(("test", t.Name, t.Set));
        foreach (var (split, name, set) in sets)
        {
            var score = bestIsLive && split == "dev" && p.Task.LastScore is { } last ? last : p.Model.Score(set.Examples, withPredictions: true);
            scores.Add((split, name, score));
        }
        var files = p.Model.WriteFinalFiles(runDir, scores);
        return scores.Select((s, i) => new FinalScore(s.Split, s.Data, s.Score, files[i])).ToList();
    }
}
