using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>What loading a checkpoint into a model did, in transformers' terms.</summary>
public sealed record LoadReport(
    string Source,
    string Architecture,
    IReadOnlyList<string> NewlyInitialized,
    IReadOnlyList<string> Unexpected)
{
    /// <summary>Head tensors of another shape that were left out (a new head for other labels), one note each.</summary>
    public IReadOnlyList<string> Reinitialized { get; init; } = [];

    /// <summary>The warnings transformers prints for the same situation, one line each (empty when all keys matched),
    /// after the notes on re-initialized head tensors.</summary>
    public IEnumerable<string> Messages()
    {
        foreach (var r in Reinitialized) yield return r;
        if (Unexpected.Count > 0)
            yield return $"Some weights of the model checkpoint at {Source} were not used when initializing {Architecture}: [{string.Join(", ", Unexpected)}]";
        if (NewlyInitialized.Count > 0)
            yield return $"Some weights of {Architecture} were not initialized from the model checkpoint at {Source} and are newly initialized: [{string.Join(", ", NewlyInitialized)}]";
    }
}

/// <summary>
/// A HuggingFace model folder: config.json + vocab.txt + model.safetensors (or pytorch_model.bin)
/// (+ tokenizer_config.json). Reads what transformers writes and writes what transformers reads.
/// </summary>
public static class ModelFolder
{
    public const string ConfigFile = "config.json";
    public const string VocabFile = "vocab.txt";
    public const string SafeTensorsFileName = "model.safetensors";
    public const string PyTorchFileName = "pytorch_model.bin";

    /// <summary>Buffers older transformers saved that carry no learned weights; ignored silently, as HF does.</summary>
    static readonly string[] IgnoredBufferSuffixes = { "embeddings.position_ids", "embeddings.token_type_ids" };

    public static void RequireFolder(string dir)
    {
        if (File.Exists(dir)) throw new BertSharpException($"{dir}: is a file; expected a model folder (config.json, vocab.txt, model.safetensors)");
        if (!Directory.Exists(dir)) throw new BertSharpException($"{dir}: model folder not found");
    }

    public static BertConfig ReadConfig(string dir)
    {
        RequireFolder(dir);
        var path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) throw new BertSharpException($"{path}: file not found (a model folder needs config.json)");
        var config = BertConfig.Load(path);
        CheckVocabMatches(dir, config);
        return config;
    }

    /// <summary>A vocab.txt with fewer tokens than vocab_size would leave embedding rows no token can reach,
    /// and one with more would produce ids past the embedding table: both mean the files do not belong together.</summary>
    static void CheckVocabMatches(string dir, BertConfig config)
    {
        var vocabPath = Path.Combine(dir, VocabFile);
        if (!File.Exists(vocabPath)) return; // a weights-only folder; the tokenizer loader reports it when it is needed
        // Counted with the tokenizer's own reader, so the count is the number of token ids it will have.
        int lines = Tokenization.BertTokenizer.ReadVocab(vocabPath).Tokens.Count;
        if (lines < config.VocabSize)
            throw new BertSharpException($"{vocabPath}: has {lines} tokens but {ConfigFile} says vocab_size {config.VocabSize}");
        if (lines > config.VocabSize)
            throw new BertSharpException($"{vocabPath}: has {lines} tokens, more than {ConfigFile}'s vocab_size {config.VocabSize}: token ids past {config.VocabSize - 1} have no embedding");
    }

    /// <summary>The weights file of a folder: model.safetensors if present, else pytorch_model.bin.</summary>
    public static string WeightsPath(string dir)
    {
        var st = Path.Combine(dir, SafeTensorsFileName);
        if (File.Exists(st)) return st;
        var pt = Path.Combine(dir, PyTorchFileName);
        if (File.Exists(pt)) return pt;
        throw new BertSharpException($"{dir}: no weights file (expected {SafeTensorsFileName} or {PyTorchFileName})");
    }

    public static Dictionary<string, Tensor> ReadWeights(string path) =>
        path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase)
            ? PyTorchCheckpointFile.Load(path)
            : SafeTensorsFile.Load(path);

    /// <summary>
    /// The one place a model is built: a <paramref name="architecture"/> model of <paramref name="config"/> with
    /// fresh weights (HF's initialization, from torch's random stream), on <paramref name="device"/> ("cpu", "cuda",
    /// "cuda:N"), computing with <paramref name="compute"/> (default: float32, the fused kernels).
    /// </summary>
    public static BertWithHead NewModel(string architecture, BertConfig config, ComputeOptions? compute = null, string device = "cpu")
    {
        var model = BertWithHead.Create(architecture, config, compute);
        model.InitWeights();
        model.to(TorchRuntime.ParseDevice(device));
        return model;
    }

    /// <summary>
    /// Loads a folder into the model class named by <paramref name="architecture"/> (default: the folder's
    /// config "architectures", else BertForPreTraining). <paramref name="configure"/> may change the config
    /// first (for example the labels of a new classification head); with <paramref name="newHead"/>, head tensors
    /// whose shape differs from the new head's (a head trained for other labels) are left out and stay freshly
    /// initialized, as transformers' ignore_mismatched_sizes.
    /// </summary>
    public static (BertWithHead Model, LoadReport Report) Load(string dir, string? architecture = null,
        Action<BertConfig>? configure = null, string? weightsPath = null, bool newHead = false, ComputeOptions? compute = null, string device = "cpu")
    {
        var config = ReadConfig(dir);
        configure?.Invoke(config);
        config.Validate(Path.Combine(dir, ConfigFile));
        architecture ??= config.Architectures.FirstOrDefault() ?? "BertForPreTraining";
        var model = NewModel(architecture, config, compute, device);
        try
        {
            var report = LoadWeights(model, weightsPath ?? WeightsPath(dir), newHead);
            model.StoreLinearWeightsInComputeDtype();
            model.eval();
            return (model, report);
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>
    /// The one place weights go into a live model: reads a weights file (safetensors or PyTorch) and copies its
    /// tensors into the model (<see cref="LoadStateDict"/>). With <paramref name="newHead"/>, tensors outside the
    /// encoder ("bert.*") whose shape differs from the model's are left out and reported in the report's
    /// <see cref="LoadReport.Reinitialized"/> instead of being an error.
    /// </summary>
    public static LoadReport LoadWeights(BertWithHead model, string path, bool newHead = false)
    {
        var weights = ReadWeights(path);
        try
        {
            var reinitialized = new List<string>();
            if (newHead)
            {
                var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
                foreach (var key in weights.Keys.Where(k => !k.StartsWith("bert.")).ToList())
                    if (shapes.TryGetValue(key, out var shape) && !shape.SequenceEqual(weights[key].shape))
                    {
                        reinitialized.Add($"{path}: '{key}' has shape [{string.Join(", ", weights[key].shape)}], the new head [{string.Join(", ", shape)}]: re-initialized");
                        weights[key].Dispose();
                        weights.Remove(key);
                    }
            }
            return LoadStateDict(model, weights, path) with { Reinitialized = reinitialized };
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    /// <summary>
    /// Copies checkpoint tensors into the model's parameters by HF state-dict key, after transformers'
    /// own normalisations: LayerNorm gamma/beta → weight/bias, a bare BertModel's keys gain the "bert."
    /// prefix, tied aliases and position-id buffers are dropped. A shape mismatch is an error.
    /// </summary>
    public static LoadReport LoadStateDict(BertWithHead model, IReadOnlyDictionary<string, Tensor> weights, string source)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        bool bare = !weights.Keys.Any(k => k.StartsWith("bert.")) && weights.Keys.Any(k => k.StartsWith("embeddings.") || k.StartsWith("encoder."));
        var used = new HashSet<string>();
        var unexpected = new List<string>();
        using (no_grad())
        {
            foreach (var (rawKey, tensor) in weights)
            {
                var key = NormalizeKey(rawKey);
                if (bare && (key.StartsWith("embeddings.") || key.StartsWith("encoder.") || key.StartsWith("pooler."))) key = "bert." + key;
                if (IgnoredBufferSuffixes.Any(key.EndsWith) || model.TiedAliasKeys.Contains(key)) continue;
                if (!parameters.TryGetValue(key, out var p)) { unexpected.Add(rawKey); continue; }
                if (!p.shape.SequenceEqual(tensor.shape))
                    throw new BertSharpException($"{source}: tensor '{rawKey}' has shape [{string.Join(", ", tensor.shape)}] but the model ({model.Architecture}, {ConfigFile}) expects [{string.Join(", ", p.shape)}]");
                if (!tensor.is_floating_point())
                    throw new BertSharpException($"{source}: tensor '{rawKey}' has dtype {tensor.dtype}; a weight must be floating point");
                p.copy_(tensor);
                used.Add(key);
            }
        }
        var missing = parameters.Keys.Where(k => !used.Contains(k)).ToList();
        return new LoadReport(source, model.Architecture, missing, unexpected);
    }

    static string NormalizeKey(string key)
    {
        // transformers renames the TF-era LayerNorm parameter names while loading.
        if (key.EndsWith(".gamma")) return key[..^".gamma".Length] + ".weight";
        if (key.EndsWith(".beta")) return key[..^".beta".Length] + ".bias";
        return key;
    }

    /// <summary>The tensors a checkpoint of this model holds: every parameter once, tied aliases left out
    /// (as transformers' safetensors writer does), as contiguous float CPU tensors, named as HF names them
    /// (<see cref="BertWithHead.BareKeys"/>).</summary>
    public static Dictionary<string, Tensor> StateDict(BertWithHead model)
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (name, p) in model.named_parameters())
        {
            // The intermediate handles (detach, to) go with the scope; the result is the caller's.
            using var scope = NewDisposeScope();
            d[model.BareKeys && name.StartsWith("bert.") ? name["bert.".Length..] : name] = p.detach().to(CPU).contiguous().DetachFromDisposeScope();
        }
        return d;
    }

    /// <summary>Writes config.json and model.safetensors (each atomically) into <paramref name="dir"/>.
    /// The tokenizer files (vocab.txt, tokenizer_config.json) are the tokenizer's to write.</summary>
    public static void Save(BertWithHead model, string dir)
    {
        Directory.CreateDirectory(dir);
        var state = StateDict(model);
        try
        {
            SafeTensorsFile.Save(Path.Combine(dir, SafeTensorsFileName), state);
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
        var config = model.Config.Clone();
        config.Architectures = new List<string> { model.Architecture };
        config.Extra["torch_dtype"] = "float32";
        config.Save(Path.Combine(dir, ConfigFile));
    }
}
