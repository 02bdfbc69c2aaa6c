using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Tasks.Embedding;

/// <summary>How a sentence-transformers Pooling module turns token vectors into one vector (its config's
/// pooling_mode_* flags); several modes concatenate, in this order, as sentence-transformers does.</summary>
public enum PoolingMode { Cls, Max, Mean, MeanSqrtLen }

/// <summary>
/// The sentence-transformers metadata of a model folder: modules.json (Transformer → Pooling → Normalize),
/// 1_Pooling/config.json (the pooling modes), sentence_bert_config.json (max_seq_length, do_lower_case). A plain BERT
/// folder has none of them: mean pooling, no normalisation, the tokenizer's length (<see cref="FromSentenceTransformers"/> false).
/// </summary>
public sealed record SentenceEmbeddingSettings
{
    public const string ModulesFile = "modules.json";
    public const string SentenceBertConfigFile = "sentence_bert_config.json";
    public const string PoolingFolder = "1_Pooling";
    public const string NormalizeFolder = "2_Normalize";

    public IReadOnlyList<PoolingMode> Pooling { get; init; } = [PoolingMode.Mean];
    /// <summary>L2-normalise the pooled vector (a Normalize module).</summary>
    public bool Normalize { get; init; }
    /// <summary>Tokens per input, [CLS] and [SEP] included (sentence_bert_config.json max_seq_length).</summary>
    public int? MaxSeqLength { get; init; }
    /// <summary>Lower-case the text before tokenizing (sentence_bert_config.json do_lower_case).</summary>
    public bool DoLowerCase { get; init; }
    /// <summary>Whether the folder held sentence-transformers metadata (else these are the plain-BERT defaults).</summary>
    public bool FromSentenceTransformers { get; init; }

    /// <summary>The vector size for a model of hidden size <paramref name="hiddenSize"/>.</summary>
    public int Dimension(int hiddenSize) => hiddenSize * Pooling.Count;

    public static string Describe(IReadOnlyList<PoolingMode> modes) => string.Join("+", modes.Select(Name));

    public static string Name(PoolingMode m) => m switch
    {
        PoolingMode.Cls => "cls", PoolingMode.Max => "max", PoolingMode.Mean => "mean", _ => "mean-sqrt-len",
    };

    /// <summary>"mean", "cls", "max", "mean-sqrt-len" (or sentence-transformers' "mean_sqrt_len_tokens" spellings).</summary>
    public static PoolingMode ParseMode(string name) => name.Trim().ToLowerInvariant().Replace('_', '-') switch
    {
        "mean" or "mean-tokens" => PoolingMode.Mean,
        "cls" or "cls-token" => PoolingMode.Cls,
        "max" or "max-tokens" => PoolingMode.Max,
        "mean-sqrt-len" or "mean-sqrt-len-tokens" => PoolingMode.MeanSqrtLen,
        _ => throw new BertSharpException($"pooling '{name}': choose mean, cls, max or mean-sqrt-len") { Parameters = ["pooling"] },
    };

    static readonly (string Key, PoolingMode Mode)[] ModeKeys =
    [
        ("pooling_mode_cls_token", PoolingMode.Cls), ("pooling_mode_max_tokens", PoolingMode.Max),
        ("pooling_mode_mean_tokens", PoolingMode.Mean), ("pooling_mode_mean_sqrt_len_tokens", PoolingMode.MeanSqrtLen),
    ];

    static readonly string[] UnsupportedModeKeys = ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"];

    /// <summary>Reads a folder's sentence-transformers files; the plain-BERT defaults when it has no modules.json.
    /// <paramref name="hiddenSize"/> checks the pooling config's word_embedding_dimension.</summary>
    public static SentenceEmbeddingSettings Read(string dir, int hiddenSize)
    {
        var modulesPath = Path.Combine(dir, ModulesFile);
        var stConfig = ReadSentenceBertConfig(dir);
        if (!File.Exists(modulesPath)) return new SentenceEmbeddingSettings { MaxSeqLength = stConfig.MaxSeqLength, DoLowerCase = stConfig.DoLowerCase };
        var modules = ParseJson(modulesPath) as JsonArray ?? throw new BertSharpException($"{modulesPath}: expected a JSON list of modules");
        IReadOnlyList<PoolingMode>? pooling = null;
        bool normalize = false, transformer = false;
        foreach (var m in modules)
        {
            string type = m?["type"]?.GetValue<string>() ?? throw new BertSharpException($"{modulesPath}: a module without \"type\"");
            string path = m?["path"]?.GetValue<string>() ?? "";
            switch (type.Split('.').Last())
            {
                case "Transformer":
                    if (path.Length != 0)
                        throw new BertSharpException($"{modulesPath}: the Transformer module is in '{path}/'; BertSharp reads folders whose transformer files are at the top (as sentence-transformers 2.x and later save them)");
                    transformer = true;
                    break;
                case "Pooling":
                    pooling = ReadPooling(Path.Combine(dir, path, "config.json"), hiddenSize);
                    break;
                case "Normalize":
                    normalize = true;
                    break;
                default:
                    throw new BertSharpException($"{modulesPath}: module '{type}' ({path}) is not supported; BertSharp reads Transformer, Pooling and Normalize modules");
            }
        }
        if (!transformer) throw new BertSharpException($"{modulesPath}: no sentence_transformers.models.Transformer module");
        return new SentenceEmbeddingSettings
        {
            Pooling = pooling ?? [PoolingMode.Mean], Normalize = normalize, MaxSeqLength = stConfig.MaxSeqLength,
            DoLowerCase = stConfig.DoLowerCase, FromSentenceTransformers = true,
        };
    }

    static (int? MaxSeqLength, bool DoLowerCase) ReadSentenceBertConfig(string dir)
    {
        var path = Path.Combine(dir, SentenceBertConfigFile);
        if (!File.Exists(path)) return (null, false);
        var o = ParseJson(path) as JsonObject ?? throw new BertSharpException($"{path}: expected a JSON object");
        int? max = null;
        if (o["max_seq_length"] is JsonValue v)
        {
            if (!v.TryGetValue(out int n) || n < 4) throw new BertSharpException($"{path}: max_seq_length must be an integer of at least 4, got {v.ToJsonString()}");
            max = n;
        }
        bool lower = o["do_lower_case"] is JsonValue l && l.TryGetValue(out bool b) && b;
        return (max, lower);
    }

    static IReadOnlyList<PoolingMode> ReadPooling(string path, int hiddenSize)
    {
        if (!File.Exists(path)) throw new BertSharpException($"{path}: file not found (modules.json names a Pooling module)");
        var o = ParseJson(path) as JsonObject ?? throw new BertSharpException($"{path}: expected a JSON object");
        foreach (var key in UnsupportedModeKeys)
            if (Flag(o, key, path)) throw new BertSharpException($"{path}: {key} is not supported (BertSharp pools with cls, max, mean or mean_sqrt_len)");
        var modes = ModeKeys.Where(k => Flag(o, k.Key, path)).Select(k => k.Mode).ToList();
        if (modes.Count == 0)
        {
            // Newer sentence-transformers also accept "pooling_mode": "mean" when constructing; honour it if written.
            if (o["pooling_mode"] is JsonValue pm && pm.TryGetValue(out string? name)) modes.Add(ParseMode(name!));
            else throw new BertSharpException($"{path}: names no pooling mode (set one of {string.Join(", ", ModeKeys.Select(k => k.Key))} to true)");
        }
        if (o["word_embedding_dimension"] is JsonValue d && d.TryGetValue(out int dim) && dim != hiddenSize)
            throw new BertSharpException($"{path}: word_embedding_dimension {dim} differs from the model's hidden_size {hiddenSize}");
        return modes;
    }

    static bool Flag(JsonObject o, string key, string path) => o[key] switch
    {
        null => false,
        JsonValue v when v.TryGetValue(out bool b) => b,
        var other => throw new BertSharpException($"{path}: {key} must be true or false, got {other.ToJsonString()}"),
    };

    static JsonNode? ParseJson(string path)
    {
        try { return JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new BertSharpException($"{path}: not valid JSON: {e.Message}"); }
    }

    /// <summary>Writes modules.json, 1_Pooling/config.json, sentence_bert_config.json and (when normalising)
    /// 2_Normalize/ as sentence-transformers saves them, so that it loads the folder.</summary>
    public void Save(string dir, int hiddenSize, int maxSeqLength)
    {
        var modules = new JsonArray
        {
            new JsonObject { ["idx"] = 0, ["name"] = "0", ["path"] = "", ["type"] = "sentence_transformers.models.Transformer" },
            new JsonObject { ["idx"] = 1, ["name"] = "1", ["path"] = PoolingFolder, ["type"] = "sentence_transformers.models.Pooling" },
        };
        if (Normalize) modules.Add(new JsonObject { ["idx"] = 2, ["name"] = "2", ["path"] = NormalizeFolder, ["type"] = "sentence_transformers.models.Normalize" });
        var indented = new JsonSerializerOptions { WriteIndented = true };
        AtomicFile.WriteAllText(Path.Combine(dir, ModulesFile), modules.ToJsonString(indented));
        var pooling = new JsonObject { ["word_embedding_dimension"] = hiddenSize };
        // Only the four keys every sentence-transformers version knows: 2.2 and older refuse the later ones
        // (weightedmean, lasttoken), and newer versions default them to false.
        foreach (var (key, mode) in ModeKeys) pooling[key] = Pooling.Contains(mode);
        Directory.CreateDirectory(Path.Combine(dir, PoolingFolder));
        AtomicFile.WriteAllText(Path.Combine(dir, PoolingFolder, "config.json"), pooling.ToJsonString(indented));
        if (Normalize) Directory.CreateDirectory(Path.Combine(dir, NormalizeFolder));
        var st = new JsonObject { ["max_seq_length"] = maxSeqLength, ["do_lower_case"] = DoLowerCase };
        AtomicFile.WriteAllText(Path.Combine(dir, SentenceBertConfigFile), st.ToJsonString(indented));
    }
}
