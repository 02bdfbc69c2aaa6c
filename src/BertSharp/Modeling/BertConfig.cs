using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Modeling;

/// <summary>
/// BERT hyper-parameters with HuggingFace <c>config.json</c> field names, so a folder written here loads in
/// transformers and theirs loads here. Fields we do not use are kept and written back unchanged.
/// </summary>
public sealed class BertConfig
{
    public int VocabSize { get; set; } = 30522;
    public int HiddenSize { get; set; } = 768;
    public int NumHiddenLayers { get; set; } = 12;
    public int NumAttentionHeads { get; set; } = 12;
    public int IntermediateSize { get; set; } = 3072;
    public string HiddenAct { get; set; } = "gelu";
    public double HiddenDropoutProb { get; set; } = 0.1;
    public double AttentionProbsDropoutProb { get; set; } = 0.1;
    public int MaxPositionEmbeddings { get; set; } = 512;
    public int TypeVocabSize { get; set; } = 2;
    public double InitializerRange { get; set; } = 0.02;
    public double LayerNormEps { get; set; } = 1e-12;
    public int PadTokenId { get; set; } = 0;
    public double? ClassifierDropout { get; set; }
    /// <summary>Label names by id (HF <c>id2label</c>); its count is <c>num_labels</c>.</summary>
    public List<string> Labels { get; set; } = new() { "LABEL_0", "LABEL_1" };
    public List<string> Architectures { get; set; } = new();
    /// <summary>HF <c>problem_type</c>: "regression", "single_label_classification", "multi_label_classification" or null.</summary>
    public string? ProblemType { get; set; }
    /// <summary>Fields of config.json this class does not model; written back as read.</summary>
    public JsonObject Extra { get; set; } = new();

    public int NumLabels => Labels.Count;
    public int HeadDim => HiddenSize / NumAttentionHeads;

    public static readonly IReadOnlyDictionary<string, (int Layers, int Hidden, int Heads, int Intermediate, int MaxPositions)> Presets =
        new Dictionary<string, (int, int, int, int, int)>
        {
            ["tiny"] = (2, 128, 2, 512, 512),
            ["mini"] = (4, 256, 4, 1024, 512),
            ["small"] = (4, 512, 8, 2048, 512),
            ["medium"] = (8, 512, 8, 2048, 512),
            ["base"] = (12, 768, 12, 3072, 512),
            ["large"] = (24, 1024, 16, 4096, 512),
            // The d2l.ai-style setting of the PyTorch project BertSharp grew from.
            ["seed"] = (2, 128, 2, 256, 64),
        };

    public static BertConfig FromPreset(string name, int vocabSize)
    {
        if (!Presets.TryGetValue(name, out var p))
            throw new BertSharpException($"unknown model preset '{name}'; choose one of: {string.Join(", ", Presets.Keys)}");
        return new BertConfig
        {
            VocabSize = vocabSize,
            NumHiddenLayers = p.Layers,
            HiddenSize = p.Hidden,
            NumAttentionHeads = p.Heads,
            IntermediateSize = p.Intermediate,
            MaxPositionEmbeddings = p.MaxPositions,
        };
    }

    /// <summary>Checks the values a model can be built from; throws with <paramref name="source"/> named.</summary>
    public void Validate(string source = "config")
    {
        void Positive(int v, string name) { if (v <= 0) throw new BertSharpException($"{source}: {name} must be positive, got {v}"); }
        Positive(VocabSize, "vocab_size");
        Positive(HiddenSize, "hidden_size");
        Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(IntermediateSize, "intermediate_size");
        Positive(MaxPositionEmbeddings, "max_position_embeddings");
        Positive(TypeVocabSize, "type_vocab_size");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new BertSharpException($"{source}: hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}");
        if (HiddenAct is not ("gelu" or "gelu_new" or "gelu_pytorch_tanh" or "relu" or "tanh"))
            throw new BertSharpException($"{source}: hidden_act '{HiddenAct}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu, tanh)");
        if (PadTokenId < 0 || PadTokenId >= VocabSize)
            throw new BertSharpException($"{source}: pad_token_id {PadTokenId} is outside the vocabulary (vocab_size {VocabSize})");
        if (NumLabels < 1) throw new BertSharpException($"{source}: id2label must name at least one label");
        foreach (var (p, name) in new[] { (HiddenDropoutProb, "hidden_dropout_prob"), (AttentionProbsDropoutProb, "attention_probs_dropout_prob") })
            if (p < 0 || p >= 1) throw new BertSharpException($"{source}: {name} must be in [0, 1), got {p}");
    }

    public static BertConfig Load(string path)
    {
        if (!File.Exists(path)) throw new BertSharpException($"{path}: file not found");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new BertSharpException($"{path}: invalid JSON at line {e.LineNumber + 1}: {FirstLine(e.Message)}"); }
        if (root is not JsonObject obj) throw new BertSharpException($"{path}: expected a JSON object");
        var c = FromJson(obj, path);
        c.Validate(path);
        return c;
    }

    public static BertConfig FromJson(JsonObject obj, string source)
    {
        var c = new BertConfig();
        var extra = new JsonObject();
        int numLabels = -1;
        Dictionary<int, string>? id2label = null;
        foreach (var (key, value) in obj)
        {
            switch (key)
            {
                case "vocab_size": c.VocabSize = Int(value, key, source); break;
                case "hidden_size": c.HiddenSize = Int(value, key, source); break;
                case "num_hidden_layers": c.NumHiddenLayers = Int(value, key, source); break;
                case "num_attention_heads": c.NumAttentionHeads = Int(value, key, source); break;
                case "intermediate_size": c.IntermediateSize = Int(value, key, source); break;
                case "hidden_act": c.HiddenAct = Str(value, key, source); break;
                case "hidden_dropout_prob": c.HiddenDropoutProb = Num(value, key, source); break;
                case "attention_probs_dropout_prob": c.AttentionProbsDropoutProb = Num(value, key, source); break;
                case "max_position_embeddings": c.MaxPositionEmbeddings = Int(value, key, source); break;
                case "type_vocab_size": c.TypeVocabSize = Int(value, key, source); break;
                case "initializer_range": c.InitializerRange = Num(value, key, source); break;
                case "layer_norm_eps": c.LayerNormEps = Num(value, key, source); break;
                case "pad_token_id": c.PadTokenId = value is null ? 0 : Int(value, key, source); break;
                case "classifier_dropout": c.ClassifierDropout = value is null ? null : Num(value, key, source); break;
                case "problem_type": c.ProblemType = value is null ? null : Str(value, key, source); break;
                case "num_labels": numLabels = Int(value, key, source); break;
                case "architectures":
                    if (value is not JsonArray arr) throw WrongType(key, "a list of strings", value, source);
                    c.Architectures = arr.Select(a => Str(a, key, source)).ToList();
                    break;
                case "id2label":
                    if (value is not JsonObject map) throw WrongType(key, "an object of id → label", value, source);
                    id2label = new();
                    foreach (var (k, v) in map)
                    {
                        if (!int.TryParse(k, out int id) || id < 0) throw new BertSharpException($"{source}: id2label key '{k}' is not a label id");
                        id2label[id] = Str(v, key, source);
                    }
                    break;
                case "label2id": break; // derived from id2label when written
                default: extra[key] = value?.DeepClone(); break;
            }
        }
        if (id2label != null)
        {
            for (int i = 0; i < id2label.Count; i++)
                if (!id2label.ContainsKey(i)) throw new BertSharpException($"{source}: id2label has no label for id {i}");
            c.Labels = Enumerable.Range(0, id2label.Count).Select(i => id2label[i]).ToList();
        }
        else if (numLabels > 0)
            c.Labels = Enumerable.Range(0, numLabels).Select(i => $"LABEL_{i}").ToList();
        c.Extra = extra;
        return c;
    }

    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(Architectures.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
            ["attention_probs_dropout_prob"] = AttentionProbsDropoutProb,
            ["classifier_dropout"] = ClassifierDropout,
            ["hidden_act"] = HiddenAct,
            ["hidden_dropout_prob"] = HiddenDropoutProb,
            ["hidden_size"] = HiddenSize,
            ["id2label"] = new JsonObject(Labels.Select((l, i) => KeyValuePair.Create(i.ToString(), (JsonNode?)l))),
            ["initializer_range"] = InitializerRange,
            ["intermediate_size"] = IntermediateSize,
            ["label2id"] = new JsonObject(Labels.Select((l, i) => KeyValuePair.Create(l, (JsonNode?)i)).DistinctBy(kv => kv.Key)),
            ["layer_norm_eps"] = LayerNormEps,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["model_type"] = "bert",
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["pad_token_id"] = PadTokenId,
            ["position_embedding_type"] = "absolute",
            ["type_vocab_size"] = TypeVocabSize,
            ["vocab_size"] = VocabSize,
        };
        if (ProblemType != null) o["problem_type"] = ProblemType;
        foreach (var (k, v) in Extra)
            if (!o.ContainsKey(k)) o[k] = v?.DeepClone();
        return o;
    }

    public void Save(string path)
    {
        var text = ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
        AtomicFile.WriteAllText(path, text);
    }

    public BertConfig Clone() => FromJson(ToJson(), "config");

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    static BertSharpException WrongType(string key, string expected, JsonNode? value, string source) =>
        new($"{source}: field '{key}' must be {expected}, got {Describe(value)}");

    static string Describe(JsonNode? v) => v switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "a list",
        JsonValue jv when jv.GetValueKind() == JsonValueKind.String => $"the string {jv.ToJsonString()}",
        _ => v.ToJsonString(),
    };

    static int Int(JsonNode? v, string key, string source)
    {
        if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.Number)
        {
            double d = NumberOf(jv);
            if (d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue) return (int)d;
        }
        throw WrongType(key, "an integer", v, source);
    }

    static double Num(JsonNode? v, string key, string source)
    {
        if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.Number) return NumberOf(jv);
        throw WrongType(key, "a number", v, source);
    }

    // A node parsed from text holds a JsonElement; one built in code holds the CLR value (int, double, ...).
    static double NumberOf(JsonValue jv) =>
        double.Parse(jv.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    static string Str(JsonNode? v, string key, string source)
    {
        if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.String) return jv.GetValue<string>();
        throw WrongType(key, "a string", v, source);
    }
}
