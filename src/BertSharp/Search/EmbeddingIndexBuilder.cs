namespace BertSharp.Search;

/// <summary>
/// Collects vectors (each scaled to unit length as it is added, so a search is a plain dot product) with their texts
/// or only their line numbers, then hands them over as an <see cref="EmbeddingIndex"/> without copying them.
/// Vectors can be added a batch at a time as an encoder makes them; the rows live in native memory, not in the .NET heap.
/// </summary>
public sealed unsafe class EmbeddingIndexBuilder : IDisposable
{
    NativeVectorMemory? _memory;
    long _capacity;
    readonly List<int> _lines = [];
    readonly List<string?>? _texts;

    /// <param name="model">The model that makes the vectors (a Hub id or a folder): stored in the index, and checked
    /// against the model of each query.</param>
    /// <param name="dimension">Numbers per vector.</param>
    /// <param name="modelNormalizes">Whether the model's own vectors are unit length (recorded; rows are normalised either way).</param>
    /// <param name="storeTexts">Store each row's text (else only its line number).</param>
    /// <param name="capacity">Rows to make room for at once (it grows as needed).</param>
    public EmbeddingIndexBuilder(string model, int dimension, bool modelNormalizes = false, bool storeTexts = true, int capacity = 1024)
    {
        if (string.IsNullOrWhiteSpace(model)) throw new BertSharpException("an index needs the name of the model that makes its vectors");
        if (dimension < 1) throw new BertSharpException($"dimension must be 1 or more (got {dimension})") { Parameters = ["dimension"] };
        Model = model;
        Dimension = dimension;
        ModelNormalizes = modelNormalizes;
        _texts = storeTexts ? [] : null;
        _capacity = Math.Max(4, capacity);
        _memory = new NativeVectorMemory(_capacity * dimension * sizeof(float));
    }

    public string Model { get; }
    public int Dimension { get; }
    public bool ModelNormalizes { get; }
    public bool StoreTexts => _texts != null;
    public int Count => _lines.Count;

    /// <summary>Adds one row.</summary>
    /// <param name="text">Its text: needed when the builder stores texts, ignored otherwise.</param>
    /// <param name="line">Its 1-based line in the corpus (default: its row + 1).</param>
    public void Add(ReadOnlySpan<float> vector, string? text = null, int? line = null)
    {
        var memory = _memory ?? throw new ObjectDisposedException(nameof(EmbeddingIndexBuilder));
        int row = Count;
        if (vector.Length != Dimension)
            throw new BertSharpException($"vector {row + 1} has {vector.Length} numbers; the index holds {Dimension}-dimension vectors of {Model}") { Parameters = ["vectors"] };
        if (_texts != null && text is null)
            throw new BertSharpException($"vector {row + 1} has no text: give one text per vector, or store only line numbers") { Parameters = ["texts"] };
        if (line is < 1) throw new BertSharpException($"vector {row + 1}: line {line} (lines count from 1)") { Parameters = ["lines"] };
        if (row == int.MaxValue) throw new BertSharpException($"an index holds at most {int.MaxValue:N0} rows");
        if (row == _capacity)
        {
            _capacity = Math.Min(int.MaxValue, _capacity * 2);
            memory.Resize(_capacity * Dimension * sizeof(float));
        }
        var into = new Span<float>((float*)memory.Pointer + (long)row * Dimension, Dimension);
        if (!VectorMath.TryNormalize(vector, into, out int bad))
            throw new BertSharpException($"vector {row + 1} holds {vector[bad].ToString(System.Globalization.CultureInfo.InvariantCulture)} at position {bad}: vectors must be finite") { Parameters = ["vectors"] };
        _lines.Add(line ?? row + 1);
        _texts?.Add(text);
    }

    /// <summary>Adds rows: <paramref name="texts"/> and <paramref name="lines"/>, when given, hold one entry per vector.</summary>
    public void AddRange(IReadOnlyList<float[]> vectors, IReadOnlyList<string>? texts = null, IReadOnlyList<int>? lines = null)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        if (texts != null && texts.Count != vectors.Count)
            throw new BertSharpException($"{vectors.Count} vectors but {texts.Count} texts: give one text per vector") { Parameters = ["texts"] };
        if (lines != null && lines.Count != vectors.Count)
            throw new BertSharpException($"{vectors.Count} vectors but {lines.Count} line numbers: give one per vector") { Parameters = ["lines"] };
        for (int i = 0; i < vectors.Count; i++) Add(vectors[i], texts?[i], lines?[i]);
    }

    /// <summary>The index of the rows added so far, which takes over their memory: the builder takes no more rows afterwards.</summary>
    public EmbeddingIndex Build()
    {
        var memory = _memory ?? throw new ObjectDisposedException(nameof(EmbeddingIndexBuilder));
        int count = Count;
        // Give back unused capacity only when it is much (an aligned realloc copies: the rows would be in memory twice).
        if (_capacity > count + count / 4 + 1024) memory.Resize(Math.Max(1, (long)count * Dimension) * sizeof(float));
        _memory = null;
        return new EmbeddingIndex(memory, 0, count, Dimension, Model, ModelNormalizes, _lines.ToArray(), _texts?.ToArray());
    }

    public void Dispose()
    {
        _memory?.Dispose();
        _memory = null;
    }
}
