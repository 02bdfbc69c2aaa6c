using BertSharp.Checkpoints;
using BertSharp.Evaluation;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;

namespace BertSharp.Tasks;

/// <summary>What a fine-tuning run reads and starts from (the training schedule is <see cref="TrainingOptions"/>).</summary>
public sealed record FineTuneOptions
{
    public required string Train { get; init; }
    public string? Dev { get; init; }
    public string? Test { get; init; }
    public DataFileOptions Data { get; init; } = new();
    /// <summary>Question answering, one SQuAD file: train on its first N articles and evaluate on the rest (instead of <see cref="Dev"/>).</summary>
    public int? SplitArticles { get; init; }
    /// <summary>The starting model folder: a `bert pretrain` run folder or any HF BERT folder. With
    /// <see cref="RandomInit"/>, only its config.json and vocab.txt are used.</summary>
    public string? Model { get; init; }
    /// <summary>Random initialization (a from-scratch baseline): the architecture from <see cref="Model"/>'s
    /// config, else from <see cref="ModelPreset"/> (default seed) and <see cref="Vocab"/>.</summary>
    public bool RandomInit { get; init; }
    public string? ModelPreset { get; init; }
    public string? Vocab { get; init; }
    public bool LowerCase { get; init; } = true;
    /// <summary>Tokens per input including [CLS]/[SEP]; default min(128, max_position_embeddings) (question
    /// answering: min(384, max_position_embeddings)).</summary>
    public int? MaxSeqLength { get; init; }
    /// <summary>Read at most this many training examples / evaluation examples per file (the first ones).</summary>
    public int? MaxTrainExamples { get; init; }
    public int? MaxEvalExamples { get; init; }
    public int BatchSize { get; init; } = 32;
    /// <summary>Inputs per forward pass when evaluating; default 128 (question answering: the batch size, at least 64).</summary>
    public int? EvalBatchSize { get; init; }
    public bool GroupByLength { get; init; } = true;
    /// <summary>Tagging with chunk tags: score entities with seqeval's strict mode in this scheme (null: its default mode).</summary>
    public EntityScheme? EntityScheme { get; init; }
    /// <summary>Question answering: windows and decoding (see <see cref="QuestionAnswering.QaSettings"/>; null: by the model's size).</summary>
    public int? DocStride { get; init; }
    public int? MaxQueryLength { get; init; }
    public int NBestSize { get; init; } = 20;
    public int MaxAnswerLength { get; init; } = 30;
    public bool Version2WithNegative { get; init; }
    public double NullScoreDiffThreshold { get; init; }
    /// <summary>"fp32" or "bf16" (bfloat16 activations and matmuls; float32 weights, optimizer state and losses).</summary>
    public string Precision { get; init; } = "fp32";
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
}

/// <summary>Per-size defaults of the fine-tuning schedule (the batch size default is 32 for all).</summary>
public static class FineTuneDefaults
{
    /// <summary>Learning rate and epochs by hidden size: small models take larger steps and more epochs (the best
    /// epoch is kept, so extra epochs cost time, not quality). The ≤ 256 row was chosen on the dev sets of SNLI,
    /// STS-B and the treebank with the seed preset (docs/RESULTS.md); the others follow the usual BERT recipes
    /// (Devlin et al.; Turc et al. for the small sizes) and are not measured here.</summary>
    public static (double LearningRate, int Epochs) For(BertConfig c) => c.HiddenSize switch
    {
        <= 256 => (5e-4, 10),
        <= 512 => (1e-4, 4),
        _ => (3e-5, 3),
    };

    public const string Describe = "learning rate 5e-4 and 10 epochs for hidden size ≤ 256 (seed, tiny, mini); 1e-4 and 4 for ≤ 512 (small, medium); 3e-5 and 3 for larger (base, large); question answering: 5e-5 and 2";
}

/// <summary>Everything a fine-tuning run does around the Trainer: read the data, build the model and the task, and
/// after training score the best model on dev and test, writing predictions and results.</summary>
public static class FineTuning
{
    public sealed record Prepared<TExample>(
        TaskFamily<TExample> Family, TaskModel<TExample> Model, FineTuningTask<TExample> Task,
        ExampleSet<TExample> Train, (string Name, ExampleSet<TExample> Set) Dev, (string Name, ExampleSet<TExample> Set)? Test,
        IReadOnlyList<string> Notes, double DefaultLearningRate, int DefaultEpochs);

    public static Prepared<TExample> Prepare<TExample>(TaskFamily<TExample> family, FineTuneOptions o, long seed, Action<string>? log = null)
    {
        var notes = new List<string>();
        void Note(string s) { notes.Add(s); log?.Invoke(s); }

        if (o.SplitArticles != null && o.Dev != null)
            throw new BertSharpException("give either dev or splitArticles (which evaluates on the training file's remaining articles), not both") { Parameters = ["dev", "splitArticles"] };
        var data = o.Data with { SplitArticles = o.SplitArticles };
        var train = family.Read(o.Train, data with { Split = DataSplit.Train, MaxExamples = o.MaxTrainExamples });
        foreach (var n in train.Notes) Note(n);
        var evalData = data with { MaxExamples = o.MaxEvalExamples };
        var dev = ReadEval(family, o.Dev, o.Train, train.HasBuiltInSplit, DataSplit.Dev, evalData, Note)
            ?? throw new BertSharpException($"{o.Train}: give dev (a file to evaluate on each epoch); {family.NoDevHint}") { Parameters = ["dev", "splitArticles"] };
        var test = ReadEval(family, o.Test, o.Train, train.HasBuiltInSplit && family.SplitHasTestPart, DataSplit.Test, evalData, Note);
        family.CheckData(train, dev.Set, o);

        TorchRuntime.Seed(seed);
        var (model, tokenizer) = CreateModel(family, o, train.Examples, Note);
        int maxSeq = o.MaxSeqLength ?? family.DefaultMaxSeqLength(model.Config);
        tokenizer = new BertTokenizer(tokenizer.Vocabulary, tokenizer.Options with { ModelMaxLength = maxSeq });
        TaskModel<TExample> taskModel;
        try
        {
            taskModel = family.Create(model, tokenizer, maxSeq, folder: null);
            family.Apply(taskModel, o);
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
    static (BertWithHead, BertTokenizer) CreateModel<T>(TaskFamily<T> family, FineTuneOptions o, IReadOnlyList<T> train, Action<string> note)
    {
        if (!o.RandomInit)
        {
            if (o.Model is null) throw new BertSharpException("give model (a pre-trained model folder), or randomInit with modelPreset and vocab") { Parameters = ["model", "randomInit", "modelPreset", "vocab"] };
            if (o.ModelPreset != null || o.Vocab != null) throw new BertSharpException("modelPreset and vocab go with randomInit; a model folder brings its own") { Parameters = ["modelPreset", "vocab", "randomInit", "model"] };
            var (model, report) = ModelFolder.Load(o.Model, family.Architecture, c => family.Configure(c, train), newHead: true, compute: ComputeOptions.ForPrecision(o.Precision), device: o.Device);
            model.train();
            note($"model: {o.Model} ({DescribeSize(model.Config)})");
            foreach (var m in report.Messages()) note(m);
            return (model, BertTokenizer.FromFolder(o.Model));
        }
        BertConfig config;
        BertTokenizer tokenizer;
        if (o.Model != null)
        {
            if (o.ModelPreset != null || o.Vocab != null) throw new BertSharpException("with randomInit, give either model (its config and vocabulary) or modelPreset and vocab") { Parameters = ["randomInit", "model", "modelPreset", "vocab"] };
            config = ModelFolder.ReadConfig(o.Model);
            tokenizer = BertTokenizer.FromFolder(o.Model);
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
        if (!bestIsLive && File.Exists(best)) ModelFolder.LoadWeights(p.Model.Model, best);
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
