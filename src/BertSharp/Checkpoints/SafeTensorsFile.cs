using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>
/// Reads and writes the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length N, N bytes of UTF-8 JSON
/// <c>{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}</c>,
/// then the raw little-endian tensor bytes, with offsets relative to the start of that buffer.
/// </summary>
/// <remarks>
/// Files come from strangers, so the whole header is validated before any tensor memory is allocated:
/// every tensor's byte range must lie inside the file, match its dtype and shape exactly, and not overlap
/// another, so the total allocation never exceeds the file's size. Every problem is reported as a
/// <see cref="BertSharpException"/> whose one-line message starts with the file path.
/// </remarks>
public static class SafeTensorsFile
{
    /// <summary>Headers larger than this are refused as absurd (the official reader uses the same limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Tensors with more dimensions than this are refused.</summary>
    public const int MaxDimensions = 64;

    internal sealed record DType(string Name, ScalarType Type, int Size);

    internal static readonly IReadOnlyList<DType> DTypes =
    [
        new("F64", ScalarType.Float64, 8),
        new("F32", ScalarType.Float32, 4),
        new("F16", ScalarType.Float16, 2),
        new("BF16", ScalarType.BFloat16, 2),
        new("I64", ScalarType.Int64, 8),
        new("I32", ScalarType.Int32, 4),
        new("I16", ScalarType.Int16, 2),
        new("I8", ScalarType.Int8, 1),
        new("U8", ScalarType.Byte, 1),
        new("BOOL", ScalarType.Bool, 1),
    ];

    private static readonly Dictionary<string, DType> ByName = DTypes.ToDictionary(d => d.Name, StringComparer.Ordinal);
    private static readonly Dictionary<ScalarType, DType> ByType = DTypes.ToDictionary(d => d.Type);

    private sealed record Entry(string Name, DType DType, long[] Shape, long Begin, long End);

    private sealed record Header(Dictionary<string, string> Metadata, List<Entry> Entries, long BufferStart, long BufferLength);

    /// <summary>
    /// Loads every tensor of a safetensors file, in header order. Tensors are on the CPU, contiguous, and
    /// own their memory (none aliases another). The caller owns (and should dispose) them.
    /// </summary>
    /// <exception cref="BertSharpException">The file is missing, unreadable or malformed.</exception>
    public static Dictionary<string, Tensor> Load(string path)
    {
        TensorBytes.EnsureLittleEndianHost();
        using var fs = OpenRead(path);
        var header = ReadHeader(path, fs);
        // Read in file order so the disk sees one forward pass; return in header order.
        var loaded = new Dictionary<string, Tensor>(header.Entries.Count, StringComparer.Ordinal);
        try
        {
            foreach (var e in header.Entries.OrderBy(e => e.Begin))
            {
                var t = empty(e.Shape, e.DType.Type);
                loaded.Add(e.Name, t);
                fs.Seek(header.BufferStart + e.Begin, SeekOrigin.Begin);
                TensorBytes.ReadInto(fs, t);
                if (e.DType.Type == ScalarType.Bool && TensorBytes.FirstInvalidBool(t) is ( >= 0, var value) bad)
                    throw Error(path, $"tensor {Quote(e.Name)}: BOOL data has byte value {value} at element {bad.Index} (must be 0 or 1)");
            }
            var result = new Dictionary<string, Tensor>(header.Entries.Count, StringComparer.Ordinal);
            foreach (var e in header.Entries) result.Add(e.Name, loaded[e.Name]);
            return result;
        }
        catch (Exception ex)
        {
            DisposeAll(loaded.Values);
            if (ex is EndOfStreamException)
                throw Error(path, "the file ended while reading tensor data (did it shrink while being read?)", ex);
            if (ex is IOException or UnauthorizedAccessException)
                throw Error(path, $"could not read: {TensorBytes.OneLine(ex.Message)}", ex);
            throw;
        }
    }

    /// <summary>The <c>__metadata__</c> map of a safetensors file (empty if it has none). The whole header is
    /// validated, but no tensor data is read.</summary>
    /// <exception cref="BertSharpException">The file is missing, unreadable or malformed.</exception>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using var fs = OpenRead(path);
        return ReadHeader(path, fs).Metadata;
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> as a safetensors file: compact JSON header with <c>__metadata__</c> first
    /// (default <c>{"format":"pt"}</c>; an empty map omits it), padded with spaces to a multiple of 8 bytes;
    /// then each tensor's C-contiguous little-endian bytes, in code-point order of the names, with no gaps.
    /// Non-ASCII characters in names and metadata are written as <c>\uXXXX</c> escapes, so the header is ASCII
    /// (this is what Python's <c>json.dumps</c> writes; any JSON reader decodes it).
    /// </summary>
    /// <remarks>
    /// The write is atomic: the data goes to a temporary file in the same folder, is flushed to disk, and then
    /// renamed over <paramref name="path"/>. On failure the temporary file is deleted and an existing file at
    /// <paramref name="path"/> is left untouched. Tensors may live on any device and be non-contiguous;
    /// they are copied as needed and not modified.
    /// </remarks>
    /// <exception cref="ArgumentException">A tensor has a dtype safetensors cannot hold here, or a name is invalid.</exception>
    /// <exception cref="BertSharpException">The file could not be written (folder missing, permission denied, disk full...).</exception>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        => Save(path, tensors, metadata, wrapStream: null);

    /// <summary><see cref="Save(string, IReadOnlyDictionary{string, Tensor}, IReadOnlyDictionary{string, string}?)"/>
    /// with a hook that wraps the output stream (tests use it to simulate a full disk).</summary>
    internal static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata, Func<Stream, Stream>? wrapStream)
    {
        TensorBytes.EnsureLittleEndianHost();
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        metadata ??= new Dictionary<string, string> { ["format"] = "pt" };

        var names = tensors.Keys.ToArray();
        foreach (var name in names)
        {
            if (name == "__metadata__") throw new ArgumentException("A tensor cannot be named '__metadata__'.", nameof(tensors));
            CheckWellFormed(name, nameof(tensors));
            var t = tensors[name] ?? throw new ArgumentException($"Tensor '{name}' is null.", nameof(tensors));
            if (!ByType.ContainsKey(t.dtype))
                throw new ArgumentException($"Tensor '{name}' has dtype {t.dtype}, which safetensors files written here do not support.", nameof(tensors));
        }
        foreach (var (k, v) in metadata)
        {
            CheckWellFormed(k, nameof(metadata));
            CheckWellFormed(v ?? throw new ArgumentException($"Metadata value for '{k}' is null.", nameof(metadata)), nameof(metadata));
        }
        Array.Sort(names, CodePointComparer.Instance);

        // Header: {"__metadata__":{...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}
        var json = new StringBuilder();
        json.Append('{');
        bool first = true;
        if (metadata.Count > 0)
        {
            WriteJsonString(json, "__metadata__");
            json.Append(":{");
            bool firstMeta = true;
            foreach (var (k, v) in metadata)
            {
                if (!firstMeta) json.Append(',');
                firstMeta = false;
                WriteJsonString(json, k);
                json.Append(':');
                WriteJsonString(json, v);
            }
            json.Append('}');
            first = false;
        }
        long offset = 0;
        foreach (var name in names)
        {
            var t = tensors[name];
            long nbytes = checked(t.NumberOfElements * t.ElementSize);
            if (!first) json.Append(',');
            first = false;
            WriteJsonString(json, name);
            json.Append(":{\"dtype\":\"").Append(ByType[t.dtype].Name).Append("\",\"shape\":[");
            json.AppendJoin(',', t.shape.Select(d => d.ToString(CultureInfo.InvariantCulture)));
            json.Append("],\"data_offsets\":[").Append(offset.ToString(CultureInfo.InvariantCulture)).Append(',');
            offset = checked(offset + nbytes);
            json.Append(offset.ToString(CultureInfo.InvariantCulture)).Append("]}");
        }
        json.Append('}');
        var headerBytes = Encoding.ASCII.GetBytes(json.ToString()); // all non-ASCII was escaped
        int padded = (headerBytes.Length + 7) / 8 * 8;
        if (padded > MaxHeaderBytes)
            throw new ArgumentException($"The header would take {padded} bytes, more than readers accept ({MaxHeaderBytes}).", nameof(tensors));

        AtomicFile.Write(path, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BitConverter.TryWriteBytes(prefix, (ulong)padded);
            stream.Write(prefix);
            stream.Write(headerBytes);
            for (int i = headerBytes.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var name in names)
            {
                var t = tensors[name];
                var cpu = t.device_type == DeviceType.CPU ? t : t.cpu();
                var contiguous = cpu.is_contiguous() ? cpu : cpu.contiguous();
                try { TensorBytes.WriteFrom(stream, contiguous); }
                finally
                {
                    if (!ReferenceEquals(contiguous, t) && !ReferenceEquals(contiguous, cpu)) contiguous.Dispose();
                    if (!ReferenceEquals(cpu, t)) cpu.Dispose();
                }
            }
        }, wrapStream);
    }

    // ---------------------------------------------------------------- reading

    private static FileStream OpenRead(string path) => CheckpointIO.OpenRead(path, FileOptions.SequentialScan);

    private static Header ReadHeader(string path, FileStream fs)
    {
        long fileLength;
        byte[] headerBytes;
        long n;
        try
        {
            fileLength = fs.Length;
            if (fileLength < 8)
                throw Error(path, $"the file is {fileLength} bytes, too short for a safetensors file (it must start with an 8-byte header length)");
            Span<byte> prefix = stackalloc byte[8];
            fs.ReadExactly(prefix);
            ulong declared = BitConverter.ToUInt64(prefix);
            if (declared > MaxHeaderBytes)
                throw Error(path, $"header length {declared} is absurd (the limit is {MaxHeaderBytes} bytes); is this a safetensors file?");
            n = (long)declared;
            if (n > fileLength - 8)
                throw Error(path, $"header claims {n} bytes but the file has {fileLength - 8} after the header length");
            headerBytes = new byte[n];
            fs.ReadExactly(headerBytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Error(path, $"could not read the header: {TensorBytes.OneLine(ex.Message)}", ex);
        }

        try { _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetCharCount(headerBytes); }
        catch (DecoderFallbackException ex) { throw Error(path, "the header is not valid UTF-8", ex); }

        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes, new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException ex) { throw Error(path, $"the header is not valid JSON: {TensorBytes.OneLine(ex.Message)}", ex); }

        using (doc)
        {
            try { return ReadHeaderObject(path, doc.RootElement, n, fileLength); }
            catch (InvalidOperationException ex)
            {
                // System.Text.Json refuses to turn an escaped lone surrogate ("\ud800") into a .NET string.
                throw Error(path, $"the header holds a string that is not valid Unicode ({TensorBytes.OneLine(ex.Message)})", ex);
            }
        }
    }

    private static Header ReadHeaderObject(string path, JsonElement root, long n, long fileLength)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw Error(path, $"the header is a JSON {Kind(root)}, not an object");

        long bufferStart = 8 + n;
        long bufferLength = fileLength - bufferStart;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prop in root.EnumerateObject())
        {
            if (!seen.Add(prop.Name))
                throw Error(path, prop.Name == "__metadata__"
                    ? "'__metadata__' appears twice in the header"
                    : $"tensor {Quote(prop.Name)} appears twice in the header");
            if (prop.Name == "__metadata__")
            {
                ReadMetadataObject(path, prop.Value, metadata);
                continue;
            }
            entries.Add(ReadEntry(path, prop.Name, prop.Value, bufferLength));
        }

        // No two non-empty ranges may share a byte (zero-length tensors occupy nothing).
        Entry? prev = null;
        foreach (var e in entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (prev is not null && e.Begin < prev.End)
                throw Error(path, $"tensors {Quote(prev.Name)} [{prev.Begin},{prev.End}] and {Quote(e.Name)} [{e.Begin},{e.End}] overlap in the data buffer");
            prev = e;
        }
        return new Header(metadata, entries, bufferStart, bufferLength);
    }

    private static void ReadMetadataObject(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(path, $"'__metadata__' is a JSON {Kind(value)}, not an object of strings");
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw Error(path, $"'__metadata__' entry {Quote(m.Name)} is a JSON {Kind(m.Value)}, not a string");
            if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                throw Error(path, $"'__metadata__' entry {Quote(m.Name)} appears twice");
        }
    }

    private static Entry ReadEntry(string path, string name, JsonElement value, long bufferLength)
    {
        string what = $"tensor {Quote(name)}";
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(path, $"{what} is described by a JSON {Kind(value)}, not an object with dtype, shape and data_offsets");
        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var f in value.EnumerateObject())
        {
            switch (f.Name)
            {
                case "dtype": dtypeEl = dtypeEl is null ? f.Value : throw Error(path, $"{what}: 'dtype' appears twice"); break;
                case "shape": shapeEl = shapeEl is null ? f.Value : throw Error(path, $"{what}: 'shape' appears twice"); break;
                case "data_offsets": offsetsEl = offsetsEl is null ? f.Value : throw Error(path, $"{what}: 'data_offsets' appears twice"); break;
                default: throw Error(path, $"{what} has an unknown field {Quote(f.Name)} (expected dtype, shape, data_offsets)");
            }
        }
        if (dtypeEl is null || shapeEl is null || offsetsEl is null)
        {
            var missing = new[] { ("dtype", dtypeEl), ("shape", shapeEl), ("data_offsets", offsetsEl) }.Where(x => x.Item2 is null).Select(x => x.Item1);
            throw Error(path, $"{what} lacks {string.Join(" and ", missing)}");
        }

        if (dtypeEl.Value.ValueKind != JsonValueKind.String)
            throw Error(path, $"{what}: dtype is a JSON {Kind(dtypeEl.Value)}, not a string");
        var dtypeName = dtypeEl.Value.GetString()!;
        if (!ByName.TryGetValue(dtypeName, out var dtype))
            throw Error(path, $"{what}: unknown dtype {Quote(dtypeName)} (supported: {string.Join(", ", DTypes.Select(d => d.Name))})");

        var shape = ReadIntArray(path, what, "shape", shapeEl.Value, MaxDimensions);
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 0)
                throw Error(path, $"{what}: dimension {i} of shape {Show(shape)} is negative");
        }
        var numel = TensorBytes.CheckedNumel(shape)
            ?? throw Error(path, $"{what}: shape {Show(shape)} has more elements than a 64-bit count holds");
        long needed;
        try { needed = checked(numel * dtype.Size); }
        catch (OverflowException) { throw Error(path, $"{what}: shape {Show(shape)} of {dtype.Name} needs more bytes than a 64-bit count holds"); }

        var offsets = ReadIntArray(path, what, "data_offsets", offsetsEl.Value, 2);
        if (offsets.Length != 2)
            throw Error(path, $"{what}: data_offsets has {offsets.Length} numbers, expected 2 ([begin, end])");
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < begin)
            throw Error(path, $"{what}: data_offsets [{begin},{end}] are not a valid range (need 0 <= begin <= end)");
        if (end - begin != needed)
            throw Error(path, $"{what}: data_offsets [{begin},{end}] give {end - begin} bytes but shape {Show(shape)} of {dtype.Name} needs {needed}");
        if (end > bufferLength)
            throw Error(path, $"{what}: data_offsets [{begin},{end}] lie outside the {bufferLength}-byte data buffer");
        return new Entry(name, dtype, shape, begin, end);
    }

    private static long[] ReadIntArray(string path, string what, string field, JsonElement el, int maxLength)
    {
        if (el.ValueKind != JsonValueKind.Array)
            throw Error(path, $"{what}: {field} is a JSON {Kind(el)}, not an array of integers");
        int count = el.GetArrayLength();
        if (count > maxLength)
            throw Error(path, $"{what}: {field} has {count} numbers (at most {maxLength} allowed)");
        var result = new long[count];
        int i = 0;
        foreach (var item in el.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out result[i]))
                throw Error(path, $"{what}: {field} element {i} ({TensorBytes.OneLine(item.GetRawText())}) is not an integer that fits in 64 bits");
            i++;
        }
        return result;
    }

    // ---------------------------------------------------------------- writing helpers

    private static void CheckWellFormed(string s, string paramName)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i]))
                throw new ArgumentException($"'{s}' contains an unpaired UTF-16 surrogate, which cannot be written as UTF-8.", paramName);
        }
    }

    /// <summary>A JSON string as Python's <c>json.dumps</c> (ensure_ascii) writes it.</summary>
    private static void WriteJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < ' ' || c > '~') sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>Orders strings by Unicode code point (= UTF-8 byte order), as Python's <c>sorted</c> and Rust do.
    /// Ordinal UTF-16 order differs only for characters above U+FFFF versus U+E000..U+FFFF.</summary>
    private sealed class CodePointComparer : IComparer<string>
    {
        public static readonly CodePointComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            if (ReferenceEquals(x, y)) return 0;
            if (x is null) return -1;
            if (y is null) return 1;
            var ex = x.EnumerateRunes();
            var ey = y.EnumerateRunes();
            while (true)
            {
                bool hx = ex.MoveNext(), hy = ey.MoveNext();
                if (!hx || !hy) return hx.CompareTo(hy);
                int c = ex.Current.Value.CompareTo(ey.Current.Value);
                if (c != 0) return c;
            }
        }
    }

    // ---------------------------------------------------------------- messages

    private static BertSharpException Error(string path, string problem, Exception? inner = null) =>
        CheckpointIO.Error(path, problem, inner);

    private static string Quote(string name) => CheckpointIO.Quote(name);

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };

    private static string Show(long[] shape) => "[" + string.Join(",", shape) + "]";

    internal static void DisposeAll(IEnumerable<Tensor> tensors)
    {
        foreach (var t in tensors) t.Dispose();
    }
}
