using System.Text;

namespace BertSharp.Search;

/// <summary>One result of a search: the row of the index (0-based, in the order the vectors were added), its cosine
/// similarity to the query, the corpus line it came from (1-based), and its text when the index stores texts.</summary>
public sealed record SearchHit(int Index, float Score, int Line, string? Text);

/// <summary>
/// An exact cosine-similarity index over sentence vectors: every row is scored against the query, nothing is
/// approximated. Rows are stored at unit length (normalised once, when added), so a search is one dot product per
/// row, vectorised (AVX-512 where the CPU has it) and split by rows over <see cref="Threads"/> threads, each keeping
/// its best k in a bounded heap; the heaps are merged at the end. Results are sorted by score, ties by row, and are
/// the same at any thread count and batch size.
/// <code>
/// using var builder = new EmbeddingIndexBuilder("sentence-transformers/all-MiniLM-L6-v2", dimension: 384, modelNormalizes: true);
/// builder.Add(vector, "A man is playing a guitar.");
/// using var index = builder.Build();
/// index.Save("corpus.index");
/// using var loaded = EmbeddingIndex.Load("corpus.index");       // memory-mapped: nothing is read until searched
/// SearchHit[] hits = loaded.Search(queryVector, topK: 5);
/// </code>
/// The file format is described on <see cref="EmbeddingIndexFile"/> (docs/EMBEDDINGS.md, "Search"). Searching is
/// thread-safe; disposing while a search runs is not.
/// </summary>
public sealed unsafe class EmbeddingIndex : IDisposable
{
    readonly VectorMemory _memory;
    readonly float* _matrix;
    // Built in this process: managed tables. Loaded from a file: pointers into the mapping.
    readonly int[]? _lineArray;
    readonly string?[]? _textArray;
    readonly int* _lines;
    readonly byte* _textBytes, _textOffsets;
    readonly long _textBytesLength;
    bool _disposed;

    internal EmbeddingIndex(VectorMemory memory, long matrixOffset, int count, int dimension, string model, bool modelNormalizes,
        int[] lines, string?[]? texts)
    {
        _memory = memory;
        _matrix = (float*)(memory.Pointer + matrixOffset);
        Count = count;
        Dimension = dimension;
        Model = model;
        ModelNormalizes = modelNormalizes;
        _lineArray = lines;
        _textArray = texts;
        HasTexts = texts != null;
    }

    internal EmbeddingIndex(MappedVectorMemory memory, EmbeddingIndexFile.Layout layout, string path)
    {
        _memory = memory;
        byte* p = memory.Pointer;
        _matrix = (float*)(p + layout.MatrixOffset);
        Count = layout.Count;
        Dimension = layout.Dimension;
        Model = layout.Model;
        ModelNormalizes = layout.ModelNormalizes;
        _lines = (int*)(p + layout.LinesOffset);
        HasTexts = layout.HasTexts;
        if (HasTexts)
        {
            _textBytes = p + layout.TextBytesOffset;
            _textBytesLength = layout.TextBytesLength;
            _textOffsets = p + layout.TextOffsetsOffset;
        }
        Path = path;
    }

    /// <summary>Number of rows.</summary>
    public int Count { get; }

    /// <summary>Numbers per vector.</summary>
    public int Dimension { get; }

    /// <summary>The model that made the vectors, as it was named when the index was built (a Hub id or a folder path);
    /// queries must come from the same model (<see cref="CheckQueryModel"/>).</summary>
    public string Model { get; }

    /// <summary>Whether the model's own vectors were unit length (its sentence-transformers Normalize module). The index
    /// stores every row at unit length either way, so its scores are cosine similarities.</summary>
    public bool ModelNormalizes { get; }

    /// <summary>Whether the texts are stored (else only their line numbers).</summary>
    public bool HasTexts { get; }

    /// <summary>The file the index was loaded from or last saved to; null for one only in memory.</summary>
    public string? Path { get; private set; }

    /// <summary>Threads a search splits its rows over (default: one per core). Small searches run on the caller's thread.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>The vector kernels (a test hook: the narrower path runs on any CPU).</summary>
    internal DotKernels.Width Kernel { get; set; } = DotKernels.Best;

    /// <summary>Where an error names the index: its file, else "the index".</summary>
    internal string Name => Path ?? "the index";

    /// <summary>Row <paramref name="index"/> as stored: unit length (or zero, for a zero vector).</summary>
    public ReadOnlySpan<float> GetVector(int index)
    {
        CheckRow(index);
        return new ReadOnlySpan<float>(Row(index), Dimension);
    }

    /// <summary>The 1-based corpus line row <paramref name="index"/> came from (row + 1 when none was given).</summary>
    public int GetLine(int index)
    {
        CheckRow(index);
        return _lineArray != null ? _lineArray[index] : _lines[index];
    }

    /// <summary>The text of row <paramref name="index"/>, or null when the index stores only line numbers.</summary>
    public string? GetText(int index)
    {
        CheckRow(index);
        if (!HasTexts) return null;
        if (_textArray != null) return _textArray[index];
        long start = ReadOffset(index), end = ReadOffset(index + 1);
        if (start < 0 || end < start || end > _textBytesLength)
            throw new BertSharpException($"{Name}: corrupt text table at row {index}: rebuild the index");
        return Encoding.UTF8.GetString(_textBytes + start, checked((int)(end - start)));
    }

    long ReadOffset(int i) => System.Runtime.CompilerServices.Unsafe.ReadUnaligned<long>(_textOffsets + 8L * i);

    /// <summary>The <paramref name="topK"/> rows most similar to <paramref name="query"/> by cosine, best first (fewer
    /// when the index has fewer rows). A zero query scores 0 with every row.</summary>
    public SearchHit[] Search(ReadOnlySpan<float> query, int topK)
    {
        var normalized = GC.AllocateUninitializedArray<float>(Dimension, pinned: true);
        PrepareQuery(query, normalized, 0, 1);
        return Search(normalized, 1, topK)[0];
    }

    /// <summary>The <paramref name="topK"/> best rows for each query, in one pass over the rows for the whole batch
    /// (each row is read from memory once for all the queries).</summary>
    public SearchHit[][] Search(IReadOnlyList<float[]> queries, int topK)
    {
        ArgumentNullException.ThrowIfNull(queries);
        var normalized = GC.AllocateUninitializedArray<float>(queries.Count * Dimension, pinned: true);
        for (int q = 0; q < queries.Count; q++) PrepareQuery(queries[q], normalized, q, queries.Count);
        return Search(normalized, queries.Count, topK);
    }

    /// <summary>Refuses queries from a model other than the index's: a different dimension always (one-line error naming
    /// the index file and both models); a different model name unless <paramref name="allowOtherModel"/> (the same model
    /// under another name, e.g. its folder instead of its Hub id).</summary>
    public void CheckQueryModel(string model, int dimension, bool allowOtherModel = false)
    {
        if (dimension != Dimension)
            throw new BertSharpException($"{Name}: built with {Model} ({Dimension} dimensions); the query model {model} makes {dimension}-dimension vectors: query with the index's model, or rebuild the index with this one");
        if (!allowOtherModel && !SameModel(model, Model))
            throw new BertSharpException($"{Name}: built with {Model}; the query model is {model}: query with the index's model, or rebuild the index with this one");
    }

    /// <summary>Whether two model names are the same model: equal, or the same folder.</summary>
    internal static bool SameModel(string a, string b)
    {
        if (string.Equals(a, b, StringComparison.Ordinal)) return true;
        if (!Directory.Exists(a) || !Directory.Exists(b)) return false;
        static string Full(string p) => System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(p));
        return string.Equals(Full(a), Full(b), OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
    }

    /// <summary>Writes the index to <paramref name="path"/> atomically (a reader sees the old file or the whole new one).</summary>
    public void Save(string path)
    {
        ThrowIfDisposed();
        EmbeddingIndexFile.Write(path, this);
        if (_lineArray != null) Path = path;   // a mapped index keeps naming the file it reads from
    }

    /// <summary>Opens an index file, memory-mapped: the header and tables are checked now (a truncated or corrupt file,
    /// or one that is not an index, is a one-line error naming it); the vectors are read from disk as searches touch them.</summary>
    public static EmbeddingIndex Load(string path) => EmbeddingIndexFile.Read(path);

    /// <summary>Stored row <paramref name="row"/> (for the file writer).</summary>
    internal float* Row(long row) => _matrix + row * Dimension;

    void CheckRow(int index)
    {
        ThrowIfDisposed();
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"the index has {Count} rows");
    }

    void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    void PrepareQuery(ReadOnlySpan<float> query, float[] into, int q, int count)
    {
        ThrowIfDisposed();
        string which = count == 1 ? "the query" : $"query {q + 1}";
        if (query.Length != Dimension)
            throw new BertSharpException($"{Name}: {which} has {query.Length} numbers; the index holds {Dimension}-dimension vectors of {Model}") { Parameters = ["query"] };
        if (!VectorMath.TryNormalize(query, into.AsSpan(q * Dimension, Dimension), out int bad))
            throw new BertSharpException($"{Name}: {which} holds {query[bad].ToString(System.Globalization.CultureInfo.InvariantCulture)} at position {bad}: vectors must be finite") { Parameters = ["query"] };
    }

    SearchHit[][] Search(float[] normalized, int queryCount, int topK)
    {
        ThrowIfDisposed();
        if (topK < 1) throw new BertSharpException($"topK must be 1 or more (got {topK})") { Parameters = ["topK"] };
        var results = new SearchHit[queryCount][];
        if (queryCount == 0) return results;
        int k = Math.Min(topK, Count);
        if (k == 0)
        {
            for (int q = 0; q < queryCount; q++) results[q] = [];
            return results;
        }
        var heaps = ScanAll(normalized, queryCount, k);
        for (int q = 0; q < queryCount; q++)
        {
            var best = TopK.Merge(heaps.Select(h => h[q]), k);
            results[q] = best.Select(b => new SearchHit(b.Row, b.Score, GetLine(b.Row), GetText(b.Row))).ToArray();
        }
        return results;
    }

    /// <summary>Splits the rows into chunks (a few per thread, so a thread slowed by other work is covered by the rest),
    /// each with its own heap per query.</summary>
    TopK[][] ScanAll(float[] queries, int queryCount, int k)
    {
        int threads = Math.Max(1, Threads);
        long work = (long)Count * Dimension * queryCount;
        int chunks = threads == 1 || work < (1L << 22) ? 1 : (int)Math.Clamp((Count + 4095L) / 4096, 1, threads * 4L);
        var heaps = new TopK[chunks][];
        fixed (float* qp = queries)
        {
            nint queryPointer = (nint)qp;
            void RunChunk(int c)
            {
                int start = (int)((long)Count * c / chunks), end = (int)((long)Count * (c + 1) / chunks);
                var h = new TopK[queryCount];
                for (int q = 0; q < queryCount; q++) h[q] = new TopK(k);
                Scan(start, end, (float*)queryPointer, queryCount, h);
                heaps[c] = h;
            }
            if (chunks == 1) RunChunk(0);
            else Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, RunChunk);
        }
        return heaps;
    }

    /// <summary>Scores rows [start, end) against every query, a block of rows at a time (small enough to stay in the
    /// L2 cache while each group of queries passes over it), and offers each score to its query's heap.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    void Scan(int start, int end, float* queries, int queryCount, TopK[] heaps)
    {
        int dim = Dimension;
        var kernel = Kernel;
        int group = DotKernels.QueriesPerTile(kernel);
        int blockRows = Math.Max(4, 256 * 1024 / (dim * 4) & ~3);
        float* scores = stackalloc float[16];
        float** tileQueries = stackalloc float*[4];
        for (int b = start; b < end; b += Math.Min(blockRows, end - b))
        {
            int blockEnd = b + Math.Min(blockRows, end - b);
            for (int q = 0; q < queryCount;)
            {
                int n = queryCount - q >= group ? group : 1;
                for (int j = 0; j < n; j++) tileQueries[j] = queries + (long)(q + j) * dim;
                for (int r = b; r < blockEnd; r += 4)
                {
                    int m = Math.Min(4, blockEnd - r);
                    // a short tile repeats its last row: its extra scores are dropped
                    DotKernels.Tile(kernel, Row(r), Row(r + Math.Min(1, m - 1)), Row(r + Math.Min(2, m - 1)), Row(r + Math.Min(3, m - 1)),
                        tileQueries, n, dim, scores);
                    for (int j = 0; j < n; j++)
                    {
                        var heap = heaps[q + j];
                        for (int i = 0; i < m; i++) heap.Offer(scores[j * 4 + i], r + i);
                    }
                }
                q += n;
            }
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _memory.Dispose();
    }
}
