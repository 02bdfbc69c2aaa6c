using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tasks;
using BertSharp.Tasks.Embedding;
using BertSharp.Tokenization;
using Microsoft.Extensions.AI;

namespace BertSharp.Inference;

/// <summary>How a <see cref="SentenceEncoder"/> is loaded and runs.</summary>
public sealed record SentenceEncoderOptions
{
    /// <summary>Tokens per input (default: the folder's sentence_bert_config.json max_seq_length, else the tokenizer's).</summary>
    public int? MaxSeqLength { get; init; }
    /// <summary>Texts per forward pass.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Embed texts longer than <see cref="MaxSeqLength"/> in overlapping windows and pool them, instead of cutting them.</summary>
    public bool Chunk { get; init; }
    /// <summary>Word pieces two windows share (default: a quarter of a window).</summary>
    public int? ChunkOverlap { get; init; }
    /// <summary>"fp32" or "bf16".</summary>
    public string Precision { get; init; } = "fp32";
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>What runs the forward pass: "torch" (default), "onnxruntime" or "auto" (<see cref="InferenceEngine"/>).</summary>
    public string Engine { get; init; } = InferenceEngine.Torch;
    /// <summary>Where a Hub id is fetched from and cached (default: <see cref="Hub.HubOptions.FromEnvironment()"/>).</summary>
    public Hub.HubOptions? Hub { get; init; }
}

/// <summary>
/// A sentence encoder loaded once: text in, vector out, as sentence-transformers' <c>model.encode</c>. It follows the
/// folder's sentence-transformers files (pooling, normalisation, max_seq_length); a plain BERT folder is mean-pooled
/// (<see cref="Notes"/> says so). Thread-safe: concurrent calls run one after another on the model, each batched and
/// sorted by length inside, results in input order. Also an <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>, for
/// Semantic Kernel and other Microsoft.Extensions.AI code:
/// <code>
/// using var encoder = SentenceEncoder.Load("models/all-MiniLM-L6-v2");
/// float[][] vectors = encoder.Encode(["A man is playing a guitar.", "Someone plays an instrument."]);
/// IEmbeddingGenerator&lt;string, Embedding&lt;float&gt;&gt; generator = encoder;
/// </code>
/// </summary>
public sealed class SentenceEncoder : IEmbeddingGenerator<string, Embedding<float>>
{
    readonly EmbeddingModel model;
    readonly SentenceEncoderOptions options;
    readonly object gate = new();
    readonly EmbeddingGeneratorMetadata metadata;

    SentenceEncoder(EmbeddingModel model, string source, SentenceEncoderOptions options, IReadOnlyList<string> notes)
    {
        this.model = model;
        this.options = options;
        Source = source;
        Notes = notes;
        metadata = new EmbeddingGeneratorMetadata("BertSharp", null, source, model.Dimension);
    }

    /// <summary>Loads a model folder (a sentence-transformers folder, a `bert finetune embed` run, or any BERT folder),
    /// or a Hub id such as "sentence-transformers/all-MiniLM-L6-v2" (<see cref="Hub.ModelSource"/>).</summary>
    public static SentenceEncoder Load(string folder, SentenceEncoderOptions? options = null)
    {
        options ??= new();
        string source = folder;
        folder = Hub.ModelSource.Resolve(folder, options.Hub);
        if (options.BatchSize < 1) throw new BertSharpException($"batchSize must be at least 1, got {options.BatchSize}") { Parameters = ["batchSize"] };
        var (embedding, notes) = LoadModel(folder, options.MaxSeqLength, options.Precision, options.Device, options.Engine);
        embedding.BatchSize = options.BatchSize;
        return new SentenceEncoder(embedding, source, options, notes);
    }

    /// <summary>Any BERT folder as an <see cref="EmbeddingModel"/>, with notes for the user (the pooling a plain
    /// folder gets; task heads left out), its forward run by <paramref name="engine"/> (<see cref="InferenceEngine"/>).</summary>
    internal static (EmbeddingModel Model, IReadOnlyList<string> Notes) LoadModel(string folder, int? maxSeqLength, string precision, string device, string engine)
    {
        var (bert, report) = ModelFolder.Load(folder, "BertModel", compute: ComputeOptions.ForInference(precision), device: device);
        try
        {
            var tokenizer = BertTokenizer.FromFolder(folder);
            var embedding = (EmbeddingModel)EmbeddingModel.Family.Wrap(bert, tokenizer, maxSeqLength, folder);
            embedding.LoadReport = report;
            var notes = new List<string>();
            if (!embedding.Settings.FromSentenceTransformers)
                notes.Add($"{folder}: no sentence-transformers files (modules.json); embedding with mean pooling over the last hidden states, not normalised");
            if (report.NewlyInitialized.Count > 0)
                notes.Add($"{folder}: {report.NewlyInitialized.Count} encoder tensors are not in the checkpoint and were initialized at random: [{string.Join(", ", report.NewlyInitialized.Take(5))}{(report.NewlyInitialized.Count > 5 ? ", …" : "")}]");
            if (TaskFamily.TryOf(bert.Config) is { } family && family.Task != EmbeddingModel.Task)
                notes.Add($"{folder}: holds {family.Description}; embedding with its encoder, its head left out");
            InferenceEngine.Attach(embedding, engine, folder);
            return (embedding, notes);
        }
        catch { bert.Dispose(); throw; }
    }

    /// <summary>The folder or Hub id the model was loaded from, as given.</summary>
    public string Source { get; }
    /// <summary>The length of an embedding.</summary>
    public int Dimension => model.Dimension;
    /// <summary>Whether embeddings are L2-normalised (their dot product is then their cosine).</summary>
    public bool Normalized => model.Settings.Normalize;
    /// <summary>Tokens per input, [CLS] and [SEP] included; longer texts are cut, or chunked (<see cref="SentenceEncoderOptions.Chunk"/>).</summary>
    public int MaxSeqLength => model.MaxSeqLength;
    /// <summary>The pooling and normalisation in use.</summary>
    public SentenceEmbeddingSettings Settings => model.Settings;
    /// <summary>What loading found worth telling the user, one line each.</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The embedding of each text, in input order.</summary>
    public float[][] Encode(IReadOnlyList<string> texts) => EncodeWithDetails(texts).Select(e => e.Vector).ToArray();

    public float[] Encode(string text) => Encode([text])[0];

    /// <summary>The embedding of each text with its token count and whether it was cut or chunked.</summary>
    public IReadOnlyList<EmbeddingPrediction> EncodeWithDetails(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        for (int i = 0; i < texts.Count; i++)
            if (texts[i] is null) throw new ArgumentException($"text {i} is null", nameof(texts));
        lock (gate) return model.EmbedTexts(texts, options.Chunk, options.ChunkOverlap);
    }

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (options?.Dimensions is int d && d != Dimension)
            throw new ArgumentException($"{Source} makes {Dimension}-dimension embeddings; {d} were asked for", nameof(options));
        cancellationToken.ThrowIfCancellationRequested();
        var texts = values.ToList();
        var created = DateTimeOffset.UtcNow;
        var vectors = Encode(texts);
        var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Select(v => new Embedding<float>(v) { ModelId = Source, CreatedAt = created }));
        return Task.FromResult(result);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(EmbeddingGeneratorMetadata) ? metadata
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose() => model.Dispose();
}
