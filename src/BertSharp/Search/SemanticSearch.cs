using System.Diagnostics;
using BertSharp.Inference;

namespace BertSharp.Search;

/// <summary>Progress of embedding a corpus: texts embedded so far of the total, and the rate.</summary>
public readonly record struct IndexingProgress(int Embedded, int Total, double TextsPerSecond);

/// <summary>How <see cref="SemanticSearch.BuildIndex(SentenceEncoder, string, IndexCorpusOptions?, IProgress{IndexingProgress}?)"/>
/// reads and embeds a corpus.</summary>
public sealed record IndexCorpusOptions
{
    /// <summary>Read this column of a TSV/CSV/JSONL table (a header name or a 0-based index) instead of one text per line.</summary>
    public string? TextColumn { get; init; }
    /// <summary>Store the texts in the index (else only their line numbers).</summary>
    public bool StoreTexts { get; init; } = true;
    /// <summary>The model name the index records (default: the encoder's folder, <see cref="SemanticSearch.ModelName(string)"/>).
    /// Give the Hub id the encoder was loaded from, so that the index names the id rather than a cache folder.</summary>
    public string? ModelName { get; init; }
    /// <summary>Texts handed to the encoder at a time (it sorts each chunk by length and batches it); progress is
    /// reported after each.</summary>
    public int ChunkSize { get; init; } = 1024;
}

/// <summary>
/// Semantic search over a corpus: a sentence encoder and an exact cosine index of the corpus it embedded.
/// <code>
/// const string model = "sentence-transformers/all-MiniLM-L6-v2";        // a Hub id or a folder
/// using var encoder = SentenceEncoder.Load(model);
/// using (var index = SemanticSearch.BuildIndex(encoder, "corpus.txt", new IndexCorpusOptions { ModelName = model }))
///     index.Save("corpus.index");
/// using var search = SemanticSearch.Open("corpus.index");                 // loads the model the index names
/// foreach (var hit in search.Search("How do I reset my password?", topK: 5))
///     Console.WriteLine($"{hit.Score:F3} line {hit.Line}: {hit.Text}");
/// </code>
/// </summary>
public sealed class SemanticSearch : IDisposable
{
    readonly bool _ownsEncoder, _ownsIndex;

    /// <summary>Searches <paramref name="index"/> with queries embedded by <paramref name="encoder"/>, which must make
    /// vectors of the index's dimension, and be the index's model unless <paramref name="allowOtherModel"/>.</summary>
    /// <param name="modelName">The encoder's model as the index would name it (default: its folder); the Hub id it was
    /// loaded from, if it was.</param>
    public SemanticSearch(EmbeddingIndex index, SentenceEncoder encoder, bool allowOtherModel = false, string? modelName = null)
        : this(index, encoder, allowOtherModel, modelName, ownsIndex: false, ownsEncoder: false) { }

    SemanticSearch(EmbeddingIndex index, SentenceEncoder encoder, bool allowOtherModel, string? modelName, bool ownsIndex, bool ownsEncoder)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(encoder);
        QueryModel = ModelName(modelName ?? encoder.Source);
        index.CheckQueryModel(QueryModel, encoder.Dimension, allowOtherModel);
        Index = index;
        Encoder = encoder;
        _ownsIndex = ownsIndex;
        _ownsEncoder = ownsEncoder;
    }

    public EmbeddingIndex Index { get; }
    public SentenceEncoder Encoder { get; }

    /// <summary>The model the queries are embedded with, named as an index names its model.</summary>
    public string QueryModel { get; }

    /// <summary>Whether the queries are embedded with the model the index was built with (not another of its dimension).</summary>
    public bool UsesIndexModel => EmbeddingIndex.SameModel(QueryModel, Index.Model);

    /// <summary>Opens an index file and loads the model it names (a folder or a Hub id), or <paramref name="model"/>
    /// instead (then only its dimension must match).</summary>
    public static SemanticSearch Open(string indexPath, string? model = null, SentenceEncoderOptions? options = null)
    {
        var index = EmbeddingIndex.Load(indexPath);
        SentenceEncoder? encoder = null;
        try
        {
            try { encoder = SentenceEncoder.Load(model ?? index.Model, options); }
            catch (BertSharpException e) when (model is null)
            {
                throw new BertSharpException($"{indexPath}: its model {index.Model} cannot be loaded here ({e.Message}); give the model to embed the queries with (--model)", e);
            }
            return new SemanticSearch(index, encoder, allowOtherModel: model != null, model ?? index.Model, ownsIndex: true, ownsEncoder: true);
        }
        catch
        {
            encoder?.Dispose();
            index.Dispose();
            throw;
        }
    }

    /// <summary>The <paramref name="topK"/> texts of the index closest to <paramref name="query"/>, best first.</summary>
    public SearchHit[] Search(string query, int topK = 5) => Search([query], topK)[0];

    /// <summary>The <paramref name="topK"/> best texts for each query: the queries are embedded in batches, then
    /// searched in one pass over the index.</summary>
    public SearchHit[][] Search(IReadOnlyList<string> queries, int topK = 5)
    {
        if (topK < 1) throw new BertSharpException($"topK must be 1 or more (got {topK})") { Parameters = ["topK"] };
        return Index.Search(Encoder.Encode(queries), topK);
    }

    /// <summary>The name an index records for a model: a Hub id as it is, a folder made absolute so the index finds its
    /// model from any working folder.</summary>
    public static string ModelName(string folderOrId) =>
        Directory.Exists(folderOrId) ? Path.TrimEndingDirectorySeparator(Path.GetFullPath(folderOrId)) : folderOrId;

    /// <summary>Embeds the texts of a corpus file (<see cref="SearchCorpus.Read"/>) once, in chunks, into an index.</summary>
    public static EmbeddingIndex BuildIndex(SentenceEncoder encoder, string corpusPath, IndexCorpusOptions? options = null,
        IProgress<IndexingProgress>? progress = null)
    {
        options ??= new();
        return BuildIndex(encoder, SearchCorpus.Read(corpusPath, options.TextColumn), options, progress);
    }

    /// <summary>Embeds <paramref name="texts"/> once, in chunks of <see cref="IndexCorpusOptions.ChunkSize"/>, into an index.</summary>
    public static EmbeddingIndex BuildIndex(SentenceEncoder encoder, IReadOnlyList<CorpusText> texts, IndexCorpusOptions? options = null,
        IProgress<IndexingProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(texts);
        options ??= new();
        if (options.ChunkSize < 1) throw new BertSharpException($"chunkSize must be 1 or more (got {options.ChunkSize})") { Parameters = ["chunkSize"] };
        using var builder = new EmbeddingIndexBuilder(ModelName(options.ModelName ?? encoder.Source), encoder.Dimension, encoder.Normalized, options.StoreTexts, texts.Count);
        var clock = Stopwatch.StartNew();
        progress?.Report(new IndexingProgress(0, texts.Count, 0));
        var chunk = new List<string>(options.ChunkSize);
        for (int start = 0; start < texts.Count; start += options.ChunkSize)
        {
            chunk.Clear();
            int end = Math.Min(texts.Count, start + options.ChunkSize);
            for (int i = start; i < end; i++) chunk.Add(texts[i].Text);
            var vectors = encoder.Encode(chunk);
            for (int i = start; i < end; i++) builder.Add(vectors[i - start], texts[i].Text, texts[i].Line);
            progress?.Report(new IndexingProgress(end, texts.Count, end / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
        }
        return builder.Build();
    }

    public void Dispose()
    {
        if (_ownsEncoder) Encoder.Dispose();
        if (_ownsIndex) Index.Dispose();
    }
}
