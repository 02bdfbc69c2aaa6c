using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Embedding;
using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;
using BertSharp.Tokenization;
using Google.Protobuf;

namespace BertSharp.Export;

/// <summary>How a model is exported to ONNX.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Emit ONNX Runtime's fused operators (EmbedLayerNormalization, Attention, SkipLayerNormalization,
    /// BiasGelu/FastGelu); the file then runs in ONNX Runtime only.</summary>
    public bool Optimize { get; init; }
    /// <summary>null (float32 weights) or "int8": dynamically quantized linear weights.</summary>
    public string? Quantize { get; init; }
    /// <summary>Export the folder as this task instead of the one it holds; "embed" exports any BERT folder's encoder
    /// with its sentence-transformers pooling (a plain folder: mean pooling).</summary>
    public string? Task { get; init; }
    /// <summary>Run ONNX Runtime on the written file against BertSharp's forward pass and record the difference.</summary>
    public bool Verify { get; init; }
    /// <summary>A labelled data file of the task (its dev file): verification then also scores both engines on it.</summary>
    public string? VerifyData { get; init; }
    /// <summary>How to read <see cref="VerifyData"/>.</summary>
    public DataFileOptions VerifyDataOptions { get; init; } = new();
    /// <summary>ONNX Runtime's intra-op threads when verifying (default: its own choice).</summary>
    public int? Threads { get; init; }
    /// <summary>Where a Hub id given as the model is fetched from and cached (default: <see cref="Hub.HubOptions.FromEnvironment()"/>).</summary>
    public Hub.HubOptions? Hub { get; init; }
}

/// <summary>An exported folder: its model.onnx and what onnx_config.json says of it.</summary>
public sealed record OnnxExportResult(string Folder, string ModelPath, long ModelBytes, OnnxModelInfo Info, IReadOnlyList<string> Notes);

/// <summary>
/// `bert export onnx`: writes a model folder as an ONNX folder that ONNX Runtime runs from C#, Python or JavaScript —
/// model.onnx (opset 17, dynamic batch and sequence axes, inputs input_ids / attention_mask / token_type_ids as int64,
/// outputs named by the task: logits (+ probabilities: a softmax, or a sigmoid per label for a multi-label classifier), start_logits / end_logits, sentence_embedding +
/// token_embeddings), the tokenizer files (vocab.txt, tokenizer_config.json, special_tokens_map.json), config.json
/// and onnx_config.json (<see cref="OnnxModelInfo"/>). See <see cref="BertOnnxGraph"/> for the graph.
/// <code>
/// var result = OnnxExport.Export("runs/snli", "runs/snli-onnx", new OnnxExportOptions { Optimize = true, Verify = true });
/// </code>
/// </summary>
public static class OnnxExport
{
    public const string ModelFile = "model.onnx";

    /// <summary>Files copied from the model folder when present (the tokenizer's and the model's configuration).</summary>
    static readonly string[] CopiedFiles = [BertTokenizer.VocabFileName, BertTokenizer.ConfigFileName, "special_tokens_map.json", "tokenizer.json", ModelFolder.ConfigFile];

    /// <summary>Protobuf refuses messages of 2 GiB; a model that large would need ONNX's external data files.</summary>
    const long MaxInitializerBytes = 2_000_000_000;

    /// <summary>The one-line error for what the exporter cannot write.</summary>
    internal static BertSharpException Unsupported(string what, string supported) =>
        new($"cannot export to ONNX: {what} is not supported (supported: {supported})");

    /// <summary>Exports the model folder (or Hub model: <see cref="Hub.ModelSource"/>) <paramref name="modelDir"/> into
    /// <paramref name="outputDir"/> (created, or its files of the same names replaced).</summary>
    public static OnnxExportResult Export(string modelDir, string outputDir, OnnxExportOptions? options = null)
    {
        options ??= new();
        modelDir = Hub.ModelSource.Resolve(modelDir, options.Hub);
        var config = ModelFolder.ReadConfig(modelDir);
        CheckExportable(config, Path.Combine(modelDir, ModelFolder.ConfigFile));
        if (Path.GetFullPath(outputDir).TrimEnd(Path.DirectorySeparatorChar) == Path.GetFullPath(modelDir).TrimEnd(Path.DirectorySeparatorChar))
            throw new BertSharpException($"{outputDir}: is the model folder itself; export into another folder") { Parameters = ["output"] };
        using var model = LoadTaskModel(modelDir, config, options.Task);
        return Export(model, outputDir, options, modelDir);
    }

    static TaskModel LoadTaskModel(string dir, BertConfig config, string? task)
    {
        if (task is not null)
        {
            var family = TaskFamily.Named(task);
            if (family == EmbeddingModel.Family) return FineTunedModel.Load<EmbeddingModel>(dir);
            if (TaskFamily.TryOf(config) != family)
                throw new BertSharpException($"{dir}: holds {TaskFamily.TryOf(config)?.Description ?? $"no task model ({config.Architectures.FirstOrDefault() ?? "no architecture"})"}, not {family.Description}; only task embed exports another folder's encoder") { Parameters = ["task"] };
        }
        if (TaskFamily.TryOf(config) is null && !File.Exists(Path.Combine(dir, SentenceEmbeddingSettings.ModulesFile)))
            throw new BertSharpException($"{dir}: holds {config.Architectures.FirstOrDefault() ?? "no architecture"}, which has no head to export; export its encoder with task embed (mean pooling), or fine-tune it first with bert finetune") { Parameters = ["task"] };
        return FineTunedModel.Load(dir);
    }

    /// <summary>What the graph cannot express: a one-line error naming it.</summary>
    public static void CheckExportable(BertConfig config, string source = ModelFolder.ConfigFile)
    {
        if (config.Extra["position_embedding_type"] is JsonValue v && v.TryGetValue(out string? type) && type != "absolute")
            throw new BertSharpException($"{source}: cannot export to ONNX: position_embedding_type '{type}' is not supported (supported: absolute)");
        if (config.HiddenAct is not ("gelu" or "gelu_new" or "gelu_pytorch_tanh" or "relu" or "tanh"))
            throw new BertSharpException($"{source}: cannot export to ONNX: hidden_act '{config.HiddenAct}' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, tanh)");
        if (config.Extra["is_decoder"] is JsonValue d && d.TryGetValue(out bool decoder) && decoder)
            throw new BertSharpException($"{source}: cannot export to ONNX: is_decoder true (a causal decoder) is not supported (supported: the bidirectional encoder)");
    }

    /// <summary>Exports a loaded task model. <paramref name="sourceDir"/>: the folder it came from, whose tokenizer and
    /// config files are copied (else the tokenizer and config are written from the model).</summary>
    public static OnnxExportResult Export(TaskModel model, string outputDir, OnnxExportOptions? options = null, string? sourceDir = null)
    {
        options ??= new();
        if (options.Quantize is not (null or "int8"))
            throw new BertSharpException($"quantize '{options.Quantize}': the supported quantization is int8") { Parameters = ["quantize"] };
        if (options.VerifyData is not null && !options.Verify)
            throw new BertSharpException("verifyData needs verify") { Parameters = ["verifyData", "verify"] };
        CheckExportable(model.Config, sourceDir is null ? "the model's config" : Path.Combine(sourceDir, ModelFolder.ConfigFile));
        var spec = SpecOf(model) with { Optimize = options.Optimize, QuantizeInt8 = options.Quantize == "int8" };
        var (graph, outputs) = BertOnnxGraph.Build(model.Model, spec);
        if (graph.InitializerBytes > MaxInitializerBytes)
            throw new BertSharpException($"cannot export to ONNX: the weights take {graph.InitializerBytes / 1e9:F1} GB; a single model.onnx holds under 2 GB (ONNX external data is not supported)");

        var info = new OnnxModelInfo
        {
            Task = model.TaskName,
            Architecture = model.Model.Architecture,
            Optimized = options.Optimize,
            Quantization = options.Quantize,
            Inputs = BertOnnxGraph.Inputs,
            Outputs = outputs,
            Labels = TaskFamily.Named(model.TaskName).HasLabels ? model.Config.Labels : [],
            Threshold = model is ClassificationModel { MultiLabel: true } ml ? ml.Threshold : null,
            MaxSeqLength = model.MaxSeqLength,
            LowercaseText = model is EmbeddingModel e && e.Settings.DoLowerCase,
            Pooling = model is EmbeddingModel em ? em.Settings.Pooling.Distinct().Order().Select(SentenceEmbeddingSettings.Name).ToList() : null,
            Normalize = model is EmbeddingModel en ? en.Settings.Normalize : null,
            QuestionAnswering = model is QuestionAnsweringModel qa ? qa.Settings.ToJson() : null,
            Source = sourceDir is null ? null : Path.GetFullPath(sourceDir),
        };
        var metadata = new Dictionary<string, string>
        {
            ["bertsharp_task"] = info.Task,
            ["labels"] = new JsonArray(info.Labels.Select(l => (JsonNode?)JsonValue.Create(l)).ToArray()).ToJsonString(),
            ["max_seq_length"] = info.MaxSeqLength.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (info.Threshold is double threshold) metadata["threshold"] = threshold.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var onnx = graph.ToModel(BertOnnxGraph.Opset, BertOnnxGraph.IrVersion, "BertSharp", ProducerVersion,
            $"{model.Model.Architecture} ({model.TaskName}) exported by BertSharp", metadata);

        Directory.CreateDirectory(outputDir);
        string modelPath = Path.Combine(outputDir, ModelFile);
        AtomicFile.Write(modelPath, s => onnx.WriteTo(s));
        WriteSideFiles(model, outputDir, sourceDir);
        info.Save(outputDir);

        var notes = new List<string>();
        if (options.Optimize) notes.Add("com.microsoft operators: the file runs in ONNX Runtime (from C#, Python, JavaScript…), not in other ONNX engines");
        if (options.Quantize == "int8" && options.Optimize) notes.Add("int8 with optimize: the Q/K/V projection stays float32 inside the fused Attention operator");
        var result = new OnnxExportResult(outputDir, modelPath, new FileInfo(modelPath).Length, info, notes);
        if (!options.Verify) return result;
        var verification = OnnxVerifier.Verify(model, modelPath, info, options.VerifyData, options.VerifyDataOptions, options.Threads);
        info = info with { Verification = verification };
        info.Save(outputDir);
        return result with { Info = info };
    }

    static string ProducerVersion =>
        typeof(OnnxExport).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "";

    internal static OnnxGraphSpec SpecOf(TaskModel model) => model switch
    {
        ClassificationModel c => new OnnxGraphSpec(c.MultiLabel ? OnnxHead.MultiLabelClassification : OnnxHead.Classification, false, false),
        SimilarityModel => new OnnxGraphSpec(OnnxHead.Regression, false, false),
        TaggingModel => new OnnxGraphSpec(OnnxHead.Tagging, false, false),
        QuestionAnsweringModel => new OnnxGraphSpec(OnnxHead.QuestionAnswering, false, false),
        EmbeddingModel e => new OnnxGraphSpec(OnnxHead.Embedding, false, false) { Pooling = e.Settings.Pooling, Normalize = e.Settings.Normalize },
        _ => throw new BertSharpException($"cannot export to ONNX: task '{model.TaskName}' is not supported (supported: classify, similarity, tag, qa, embed)"),
    };

    /// <summary>The tokenizer files and config.json: copied from the model folder when there, else written from the model.</summary>
    static void WriteSideFiles(TaskModel model, string outputDir, string? sourceDir)
    {
        var copied = new HashSet<string>();
        if (sourceDir is not null)
            foreach (var name in CopiedFiles)
            {
                string from = Path.Combine(sourceDir, name);
                if (!File.Exists(from)) continue;
                AtomicFile.Write(Path.Combine(outputDir, name), s => { using var f = File.OpenRead(from); f.CopyTo(s); });
                copied.Add(name);
            }
        if (!copied.Contains(BertTokenizer.VocabFileName) || !copied.Contains(BertTokenizer.ConfigFileName)) model.Tokenizer.Save(outputDir);
        if (!copied.Contains(ModelFolder.ConfigFile))
        {
            var config = model.Config.Clone();
            config.Architectures = [model.Model.Architecture];
            config.Save(Path.Combine(outputDir, ModelFolder.ConfigFile));
        }
    }
}
