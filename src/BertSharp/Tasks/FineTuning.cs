using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tasks;

/// <summary>What a fine-tuning run reads and starts from (the training schedule is <see cref="TrainingOptions"/>).</summary>
public sealed record FineTuneOptions
{
    /// <summary>The dtype and kernels the model computes with.</summary>
    public ComputeOptions Compute { get; init; } = ComputeOptions.Default;
    public required string Train { get; init; }
    public string? Dev { get; init; }
    public string? Test { get; init; }
    public DataFileOptions Data { get; init; } = new();
    /// <summary>The starting model folder: a `bert pretrain` run folder or any HF BERT folder. With
    /// <see cref="RandomInit"/>, only its config.json and vocab.txt are used.</summary>
    public string? Model { get; init; }
    /// <summary>Random initialization (a from-scratch baseline): the architecture from <see cref="Model"/>'s
    /// config, else from <see cref="ModelPreset"/> and <see cref="Vocab"/>.</summary>
    public bool RandomInit { get; init; }
    public string? ModelPreset { get; init; }
    public string? Vocab { get; init; }
    public bool LowerCase { get; init; } = true;
    /// <summary>Tokens per input including [CLS]/[SEP]; default min(128, max_position_embeddings).</summary>
    public int? MaxSeqLength { get; init; }
    /// <summary>Read at most this many training examples / evaluation examples per file (the first ones).</summary>
    public int? MaxTrainExamples { get; init; }
    public int? MaxEvalExamples { get; init; }
    public int BatchSize { get; init; } = 32;
    public int EvalBatchSize { get; init; } = 128;
    public bool GroupByLength { get; init; } = true;
}

/// <summary>How one task family plugs into <see cref="FineTuning"/>: its head, its reader, and its labels.</summary>
public sealed class FineTuneSpec<TExample>
{
    public required string Name { get; init; }
    public required string Architecture { get; init; }
    public required Func<string, DataFileOptions, ExampleSet<TExample>> Read { get; init; }
    /// <summary>Sets the config's labels (from the training examples), problem_type and task name.</summary>
    public required Action<BertConfig, IReadOnlyList<TExample>> Configure { get; init; }
    public required Func<BertWithHead, BertTokenizer, int, TaskModel<TExample>> Create { get; init; }
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

    public const string Describe = "learning rate 5e-4 and 10 epochs for hidden size ≤ 256 (seed, tiny, mini); 1e-4 and 4 for ≤ 512 (small, medium); 3e-5 and 3 for larger (base, large)";
}

/// <summary>Everything a fine-tuning command does around the Trainer: read the data, build the model and the
/// task, and after training score the best model on dev and test, writing predictions and results.</summary>
public static class FineTuning
{
    public sealed record Prepared<TExample>(
        FineTuneSpec<TExample> Spec, TaskModel<TExample> Model, FineTuningTask<TExample> Task,
        ExampleSet<TExample> Train, (string Name, ExampleSet<TExample> Set) Dev, (string Name, ExampleSet<TExample> Set)? Test,
        IReadOnlyList<string> Notes, double DefaultLearningRate, int DefaultEpochs);

    public static Prepared<TExample> Prepare<TExample>(FineTuneSpec<TExample> spec, FineTuneOptions o, long seed, Action<string>? log = null)
    {
        var notes = new List<string>();
        void Note(string s) { notes.Add(s); log?.Invoke(s); }

        var train = spec.Read(o.Train, o.Data with { Split = DataSplit.Train, MaxExamples = o.MaxTrainExamples });
        foreach (var n in train.Notes) Note(n);
        var evalData = o.Data with { MaxExamples = o.MaxEvalExamples };
        var dev = ReadEval(spec, o.Dev, o.Train, train.HasBuiltInSplit, DataSplit.Dev, evalData, Note)
            ?? throw new BertSharpException($"{o.Train}: give --dev (a file to evaluate on each epoch); only the treebank sample has a built-in split");
        var test = ReadEval(spec, o.Test, o.Train, train.HasBuiltInSplit, DataSplit.Test, evalData, Note);

        TorchRuntime.Seed(seed);
        var (model, tokenizer, loadNotes) = CreateModel(spec, o, train.Examples);
        foreach (var n in loadNotes) Note(n);
        int maxSeq = o.MaxSeqLength ?? Math.Min(128, model.Config.MaxPositionEmbeddings);
        tokenizer = new BertTokenizer(tokenizer.Vocabulary, tokenizer.Options with { ModelMaxLength = maxSeq });
        model.to(TorchRuntime.Device);
        var taskModel = spec.Create(model, tokenizer, maxSeq);
        taskModel.BatchSize = o.EvalBatchSize;
        var features = taskModel.Encode(train.Examples);
        if (features.Count != train.Examples.Count) Note($"{features.Count} training windows from {train.Examples.Count} sentences (max_seq_length {maxSeq})");
        var task = new FineTuningTask<TExample>(taskModel, features, dev.Set.Examples, o.BatchSize, seed, o.GroupByLength);
        var (lr, epochs) = FineTuneDefaults.For(model.Config);
        return new Prepared<TExample>(spec, taskModel, task, train, dev, test, notes, lr, epochs);
    }

    static (string Name, ExampleSet<T> Set)? ReadEval<T>(FineTuneSpec<T> spec, string? path, string trainPath, bool builtIn, DataSplit split, DataFileOptions data, Action<string> note)
    {
        if (path is null && !builtIn) return null;
        var file = path ?? trainPath;
        var set = spec.Read(file, data with { Split = split });
        foreach (var n in set.Notes) note(n);
        return (set.HasBuiltInSplit ? $"{file} ({split.ToString().ToLowerInvariant()} part)" : file, set);
    }

    /// <summary>The model to fine-tune: a folder's weights with a new head (reported as newly initialized; a head of
    /// another size is re-initialized), or random weights of the folder's or a preset's size.</summary>
    static (BertWithHead, BertTokenizer, List<string>) CreateModel<T>(FineTuneSpec<T> spec, FineTuneOptions o, IReadOnlyList<T> train)
    {
        var notes = new List<string>();
        if (!o.RandomInit)
        {
            if (o.Model is null) throw new BertSharpException("give --model DIR (a pre-trained model folder), or --init random with --model-preset and --vocab");
            if (o.ModelPreset != null || o.Vocab != null) throw new BertSharpException("--model-preset and --vocab go with --init random; a --model folder brings its own");
            var (model, report, mismatched) = LoadWithNewHead(o.Model, spec.Architecture, c => spec.Configure(c, train), o.Compute);
            notes.Add($"model: {o.Model} ({DescribeSize(model.Config)})");
            foreach (var m in mismatched) notes.Add(m);
            foreach (var m in report.Messages()) notes.Add(m);
            return (model, BertTokenizer.FromFolder(o.Model), notes);
        }
        BertConfig config;
        BertTokenizer tokenizer;
        if (o.Model != null)
        {
            if (o.ModelPreset != null || o.Vocab != null) throw new BertSharpException("with --init random, give either --model DIR (its config and vocabulary) or --model-preset and --vocab");
            config = ModelFolder.ReadConfig(o.Model);
            tokenizer = BertTokenizer.FromFolder(o.Model);
        }
        else
        {
            if (o.Vocab is null) throw new BertSharpException("--init random needs --vocab FILE (a vocab.txt) with --model-preset, or --model DIR");
            tokenizer = BertTokenizer.FromVocabFile(o.Vocab, o.LowerCase);
            config = BertConfig.FromPreset(o.ModelPreset ?? "seed", tokenizer.VocabSize);
        }
        spec.Configure(config, train);
        config.Validate();
        var random = BertWithHead.Create(spec.Architecture, config, o.Compute);
        random.InitWeights();
        long count = random.parameters().Sum(p => p.numel());
        notes.Add($"model: random initialization, {(o.Model != null ? $"the size of {o.Model}" : $"preset {o.ModelPreset ?? "seed"}")} ({DescribeSize(config)}); all {count:N0} parameters newly initialized");
        return (random, tokenizer, notes);
    }

    static string DescribeSize(BertConfig c) =>
        $"{c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, vocab {c.VocabSize}, max positions {c.MaxPositionEmbeddings}";

    /// <summary>Loads a folder into <paramref name="architecture"/> after <paramref name="configure"/>; head tensors
    /// ("classifier.*") whose shape differs from the new head's (a head trained for other labels) are dropped and
    /// re-initialized, as transformers' ignore_mismatched_sizes.</summary>
    public static (BertWithHead Model, LoadReport Report, List<string> Notes) LoadWithNewHead(string dir, string architecture, Action<BertConfig> configure, ComputeOptions? compute = null)
    {
        var config = ModelFolder.ReadConfig(dir);
        configure(config);
        config.Validate(Path.Combine(dir, ModelFolder.ConfigFile));
        var model = BertWithHead.Create(architecture, config, compute);
        model.InitWeights();
        var path = ModelFolder.WeightsPath(dir);
        var weights = ModelFolder.ReadWeights(path);
        var notes = new List<string>();
        try
        {
            var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
            foreach (var key in weights.Keys.Where(k => k.StartsWith("classifier.")).ToList())
                if (shapes.TryGetValue(key, out var shape) && !shape.SequenceEqual(weights[key].shape))
                {
                    notes.Add($"{path}: '{key}' has shape [{string.Join(", ", weights[key].shape)}], the new head [{string.Join(", ", shape)}]: re-initialized");
                    weights[key].Dispose();
                    weights.Remove(key);
                }
            var report = ModelFolder.LoadStateDict(model, weights, path);
            return (model, report, notes);
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    /// <summary>The final scores of the best model on one evaluation set.</summary>
    public sealed record FinalScore(string Split, string Data, DatasetScore Score, string PredictionsFile);

    /// <summary>
    /// Loads the best model (the run folder's root) into the task model, scores it on dev and test, and writes
    /// predictions_dev.jsonl / predictions_test.jsonl and results.json into the run folder.
    /// </summary>
    public static IReadOnlyList<FinalScore> FinalEvaluation<T>(Prepared<T> p, string runDir)
    {
        var best = Path.Combine(runDir, ModelFolder.SafeTensorsFileName);
        if (File.Exists(best))
        {
            var weights = ModelFolder.ReadWeights(best);
            try { ModelFolder.LoadStateDict(p.Model.Model, weights, best); }
            finally { foreach (var w in weights.Values) w.Dispose(); }
        }
        var results = new List<FinalScore>();
        var sets = new List<(string Split, string Name, ExampleSet<T> Set)> { ("dev", p.Dev.Name, p.Dev.Set) };
        if (p.Test is { } t) sets.Add(("test", t.Name, t.Set));
        foreach (var (split, name, set) in sets)
        {
            var score = p.Model.Score(set.Examples, withPredictions: true);
            var file = Path.Combine(runDir, $"predictions_{split}.jsonl");
            WriteJsonl(file, score.Predictions ?? []);
            results.Add(new FinalScore(split, name, score, file));
        }
        var doc = new JsonObject { ["task"] = p.Spec.Name };
        foreach (var r in results)
            doc[r.Split] = new JsonObject
            {
                ["data"] = r.Data,
                ["metrics"] = MetricsJson(r.Score.Metrics),
            };
        AtomicFile.WriteAllText(Path.Combine(runDir, "results.json"), doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return results;
    }

    public static JsonObject MetricsJson(IReadOnlyDictionary<string, double> metrics) =>
        new(metrics.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)(double.IsFinite(kv.Value) ? Math.Round(kv.Value, 6) : null))));

    public static void WriteJsonl(string path, IEnumerable<JsonObject> rows)
    {
        var options = new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        AtomicFile.Write(path, s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), leaveOpen: true);
            foreach (var r in rows) { w.Write(r.ToJsonString(options)); w.Write('\n'); }
        });
    }
}
