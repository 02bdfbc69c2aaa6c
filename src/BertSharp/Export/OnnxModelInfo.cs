using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Export;

/// <summary>
/// onnx_config.json, beside model.onnx: what a program running the file needs to know besides the tokenizer files —
/// the task, the inputs and outputs with their shapes, the labels by id, the maximum input length, the embedding
/// pooling, how the file was made, and the verification against BertSharp when it ran.
/// </summary>
public sealed record OnnxModelInfo
{
    public const string FileName = "onnx_config.json";

    /// <summary>"classify", "similarity", "tag", "qa" or "embed".</summary>
    public required string Task { get; init; }
    /// <summary>The HF architecture the graph was exported from.</summary>
    public required string Architecture { get; init; }
    public int Opset { get; init; } = BertOnnxGraph.Opset;
    /// <summary>Whether the graph uses ONNX Runtime's fused com.microsoft operators (it then runs only in ONNX Runtime).</summary>
    public bool Optimized { get; init; }
    /// <summary>null, or "int8" (dynamically quantized linear weights).</summary>
    public string? Quantization { get; init; }
    public required IReadOnlyList<OnnxTensorInfo> Inputs { get; init; }
    public required IReadOnlyList<OnnxTensorInfo> Outputs { get; init; }
    /// <summary>Label (or tag) names by id: the columns of logits and probabilities; empty for qa and embed.</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];
    /// <summary>Multi-label classifiers: the probability from which a label is predicted (probabilities are then a
    /// sigmoid per label); null otherwise.</summary>
    public double? Threshold { get; init; }
    /// <summary>Tokens per input, [CLS] and [SEP] included, that the model was fine-tuned (or configured) with.</summary>
    public int MaxSeqLength { get; init; }
    /// <summary>Embedding models: lower-case the text before tokenizing (sentence_bert_config.json do_lower_case).</summary>
    public bool LowercaseText { get; init; }
    /// <summary>Embedding models: the pooling modes baked into sentence_embedding ("mean", "cls", "max", "mean-sqrt-len").</summary>
    public IReadOnlyList<string>? Pooling { get; init; }
    /// <summary>Embedding models: whether sentence_embedding is L2-normalised.</summary>
    public bool? Normalize { get; init; }
    /// <summary>Question answering: the window settings (qa_config.json's fields).</summary>
    public JsonObject? QuestionAnswering { get; init; }
    /// <summary>The model folder exported, when known.</summary>
    public string? Source { get; init; }
    public string Producer { get; init; } = "BertSharp";
    /// <summary>ONNX Runtime against BertSharp, when the export was verified.</summary>
    public OnnxVerification? Verification { get; init; }

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static JsonArray Tensors(IEnumerable<OnnxTensorInfo> tensors) => new(tensors.Select(t => (JsonNode)new JsonObject
    {
        ["name"] = t.Name,
        ["type"] = t.Type,
        ["shape"] = new JsonArray(t.Shape.Select(d => d is string s ? JsonValue.Create(s) : (JsonNode?)JsonValue.Create(Convert.ToInt64(d))).ToArray()),
        ["description"] = t.Description,
    }).ToArray());

    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["format"] = "onnx",
            ["model"] = OnnxExport.ModelFile,
            ["task"] = Task,
            ["architecture"] = Architecture,
            ["opset"] = Opset,
            ["optimized"] = Optimized,
            ["quantization"] = Quantization,
            ["inputs"] = Tensors(Inputs),
            ["outputs"] = Tensors(Outputs),
            ["labels"] = new JsonArray(Labels.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()),
        };
        if (Threshold is double t)
        {
            o["multi_label"] = true;
            o["threshold"] = t;
        }
        o["max_seq_length"] = MaxSeqLength;
        if (Pooling is not null)
        {
            o["pooling"] = new JsonArray(Pooling.Select(p => (JsonNode?)JsonValue.Create(p)).ToArray());
            o["normalize"] = Normalize;
            o["lowercase_text"] = LowercaseText;
        }
        if (QuestionAnswering is not null) o["question_answering"] = QuestionAnswering.DeepClone();
        o["source"] = Source;
        o["producer"] = Producer;
        if (Verification is not null) o["verification"] = Verification.ToJson();
        return o;
    }

    public void Save(string dir) => AtomicFile.WriteAllText(Path.Combine(dir, FileName), ToJson().ToJsonString(Indented) + "\n");

    /// <summary>Reads an exported folder's onnx_config.json (its verification, if any, is not read back).</summary>
    public static OnnxModelInfo Load(string dir)
    {
        string path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) throw new BertSharpException($"{path}: file not found (an exported folder has {OnnxExport.ModelFile} and {FileName}; export one with `bert export onnx`)");
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new BertSharpException($"{path}: expected a JSON object"); }
        catch (JsonException e) { throw new BertSharpException($"{path}: not valid JSON: {e.Message}"); }
        try
        {
            static List<OnnxTensorInfo> Read(JsonNode? n) => (n as JsonArray ?? []).Select(t => new OnnxTensorInfo(
                t!["name"]!.GetValue<string>(), t["type"]!.GetValue<string>(),
                (t["shape"] as JsonArray ?? []).Select(d => d!.GetValueKind() == JsonValueKind.String ? (object)d.GetValue<string>() : d.GetValue<long>()).ToList(),
                t["description"]?.GetValue<string>() ?? "")).ToList();
            return new OnnxModelInfo
            {
                Task = o["task"]!.GetValue<string>(),
                Architecture = o["architecture"]!.GetValue<string>(),
                Opset = o["opset"]?.GetValue<int>() ?? BertOnnxGraph.Opset,
                Optimized = o["optimized"]?.GetValue<bool>() ?? false,
                Quantization = o["quantization"]?.GetValue<string>(),
                Inputs = Read(o["inputs"]),
                Outputs = Read(o["outputs"]),
                Labels = (o["labels"] as JsonArray ?? []).Select(l => l!.GetValue<string>()).ToList(),
                Threshold = o["threshold"]?.GetValue<double>(),
                MaxSeqLength = o["max_seq_length"]?.GetValue<int>() ?? 512,
                Pooling = (o["pooling"] as JsonArray)?.Select(p => p!.GetValue<string>()).ToList(),
                Normalize = o["normalize"]?.GetValue<bool>(),
                LowercaseText = o["lowercase_text"]?.GetValue<bool>() ?? false,
                QuestionAnswering = o["question_answering"]?.DeepClone() as JsonObject,
                Source = o["source"]?.GetValue<string>(),
                Producer = o["producer"]?.GetValue<string>() ?? "",
            };
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new BertSharpException($"{path}: a field is missing or of the wrong type ({e.Message})");
        }
    }
}
