using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>
/// Reads a PyTorch state dict written by <c>torch.save(model.state_dict(), f)</c> in the zip format (PyTorch
/// 1.6 and later): <c>PREFIX/data.pkl</c> (the pickled dict), <c>PREFIX/data/KEY</c> (one raw little-endian
/// storage per key), <c>PREFIX/version</c> and, from PyTorch 2.x, <c>PREFIX/byteorder</c>.
/// </summary>
/// <remarks>
/// <para>The pickle is interpreted by a restricted unpickler that never executes anything: it knows only the
/// opcodes <c>torch.save</c> emits, and the only globals it accepts are <c>collections.OrderedDict</c>,
/// <c>torch._utils._rebuild_tensor_v2</c>, <c>torch._utils._rebuild_parameter</c> and the typed storage classes
/// (<c>torch.FloatStorage</c>, ...). Anything else (<c>os.system</c>, <c>builtins.eval</c>, ...) is refused.</para>
/// <para>Every tensor view is checked against its storage before memory is allocated, and every storage's
/// size against its zip entry, so the allocation is bounded by the file's (uncompressed) content.</para>
/// <para>Like <c>torch.load</c>, entries that share a storage in the file share memory in the result: a tied
/// weight (HF BERT's <c>cls.predictions.decoder.weight</c> and <c>bert.embeddings.word_embeddings.weight</c>)
/// comes back as two tensors over the same memory, so writing into one changes the other. Use
/// <c>.clone()</c> where independence is needed. A view is returned with the strides it was saved with,
/// which for a state dict is practically always contiguous.</para>
/// </remarks>
public static class PyTorchCheckpointFile
{
    /// <summary>data.pkl entries larger than this are refused (a BERT-large state dict's is about 30 KB).</summary>
    public const long MaxPickleBytes = 100_000_000;

    /// <summary>Deflate cannot compress better than about 1032:1; an entry claiming more is lying.</summary>
    private const long MaxDeflateRatio = 1032;

    /// <summary>
    /// Loads every tensor of a <c>torch.save(state_dict)</c> file, in the file's order. Tensors are on the CPU;
    /// see the class remarks about shared storage. The caller owns (and should dispose) them.
    /// </summary>
    /// <exception cref="BertSharpException">The file is missing, unreadable, malformed, or asks for anything a
    /// state dict does not need.</exception>
    public static Dictionary<string, Tensor> Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        TensorBytes.EnsureLittleEndianHost();
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw ex switch
            {
                FileNotFoundException or DirectoryNotFoundException => Error(path, "file not found", ex),
                UnauthorizedAccessException => Error(path, "permission denied", ex),
                _ => Error(path, $"could not open: {TensorBytes.OneLine(ex.Message)}", ex),
            };
        }

        using (fs)
        {
            try
            {
                CheckMagic(path, fs);
                using var zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: true);
                return LoadFromZip(path, fs.Length, zip);
            }
            catch (InvalidDataException ex)
            {
                throw Error(path, $"not a valid zip archive, truncated or corrupt ({TensorBytes.OneLine(ex.Message)})", ex);
            }
            catch (EndOfStreamException ex)
            {
                throw Error(path, "the file ends too early (truncated?)", ex);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw Error(path, $"could not read: {TensorBytes.OneLine(ex.Message)}", ex);
            }
        }
    }

    private static void CheckMagic(string path, FileStream fs)
    {
        Span<byte> head = stackalloc byte[4];
        int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        fs.Seek(0, SeekOrigin.Begin);
        if (n == 4 && head[0] == 'P' && head[1] == 'K') return;
        if (n >= 2 && head[0] == 0x80 && head[1] <= 5)
            throw Error(path, "is a legacy torch.save file (PyTorch before 1.6, not a zip archive), which is not supported; " +
                "re-save it with a recent PyTorch or convert it to safetensors");
        throw Error(path, n < 4
            ? $"the file is {fs.Length} bytes, too short for a PyTorch checkpoint"
            : "not a PyTorch checkpoint (a torch.save file is a zip archive; this one does not start with 'PK')");
    }

    private static Dictionary<string, Tensor> LoadFromZip(string path, long fileLength, ZipArchive zip)
    {
        // torch.save writes every entry under one top-level folder, named after the file ("archive" in
        // PyTorch 2.x, the file's stem in 1.x); find it through data.pkl.
        var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)
                                             && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pickles.Count == 0)
            throw Error(path, "the zip archive has no PREFIX/data.pkl entry; is it a torch.save file?");
        if (pickles.Count > 1)
            throw Error(path, $"the zip archive has {pickles.Count} data.pkl entries ({string.Join(", ", pickles.Select(p => p.FullName))}); expected one");
        var pklEntry = pickles[0];
        string prefix = pklEntry.FullName[..^"data.pkl".Length];
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var e in zip.Entries)
        {
            if (!entries.TryAdd(e.FullName, e))
                throw Error(path, $"the zip archive has two entries named {Quote(e.FullName)}");
        }

        if (entries.TryGetValue(prefix + "byteorder", out var byteorderEntry))
        {
            var order = Encoding.ASCII.GetString(ReadEntry(path, fileLength, byteorderEntry, 16)).Trim();
            if (order != "little")
                throw Error(path, order == "big"
                    ? "the checkpoint was written on a big-endian machine, which is not supported"
                    : $"{byteorderEntry.FullName} says {Quote(order)}, expected 'little' or 'big'");
        }

        var pickle = ReadEntry(path, fileLength, pklEntry, MaxPickleBytes);
        var policy = new StateDictPolicy(path);
        var root = RestrictedUnpickler.Load(pickle, path, pklEntry.FullName, policy);
        if (root is not PickleDict dict)
            throw Error(path, $"{pklEntry.FullName} holds {RestrictedUnpickler.Describe(root)}, not a state dict");

        // Validate every entry before allocating anything.
        var refs = new List<(string Name, TensorRef Ref)>(dict.Count);
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string name)
                throw Error(path, $"the state dict has a key that is {RestrictedUnpickler.Describe(key)}, not a string");
            if (value is not TensorRef tr)
                throw Error(path, $"state dict entry {Quote(name)} is {RestrictedUnpickler.Describe(value)}, not a tensor");
            CheckView(path, name, tr);
            refs.Add((name, tr));
        }
        var storageEntries = new Dictionary<string, (StorageRef Storage, ZipArchiveEntry Entry)>(StringComparer.Ordinal);
        foreach (var s in refs.Select(r => r.Ref.Storage).DistinctBy(s => s.Key))
        {
            string entryName = prefix + "data/" + s.Key;
            if (!entries.TryGetValue(entryName, out var entry))
                throw Error(path, $"storage {Quote(s.Key)} has no zip entry {Quote(entryName)}");
            long expected = checked(s.Numel * s.Kind.Size); // cannot overflow: Numel is capped in PersistentLoad
            if (entry.Length != expected)
                throw Error(path, $"storage {Quote(s.Key)} should hold {s.Numel} x {s.Kind.Size} = {expected} bytes ({s.Kind.Name}) but its zip entry has {entry.Length}");
            CheckEntrySize(path, fileLength, entry);
            storageEntries.Add(s.Key, (s, entry));
        }

        // Read each storage once, then hand out views onto it.
        var storages = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var result = new Dictionary<string, Tensor>(refs.Count, StringComparer.Ordinal);
        try
        {
            foreach (var (key, (s, entry)) in storageEntries)
            {
                var t = empty([s.Numel], s.Kind.Type);
                storages.Add(key, t);
                using (var stream = entry.Open())
                {
                    TensorBytes.ReadInto(stream, t);
                    if (stream.ReadByte() != -1)
                        throw Error(path, $"zip entry {Quote(entry.FullName)} holds more than its declared {entry.Length} bytes");
                }
                CheckCrc(path, entry, TensorBytes.Crc32(t));
                if (s.Kind.Type == ScalarType.Bool && TensorBytes.FirstInvalidBool(t) is ( >= 0, var value) bad)
                    throw Error(path, $"bool storage {Quote(key)} has byte value {value} at element {bad.Index} (must be 0 or 1)");
            }
            foreach (var (name, tr) in refs)
            {
                result.Add(name, storages[tr.Storage.Key].as_strided(tr.Size, tr.Stride, tr.Offset));
            }
            return result;
        }
        catch
        {
            SafeTensorsFile.DisposeAll(result.Values);
            throw;
        }
        finally
        {
            // The views keep the memory alive; these handles are no longer needed.
            SafeTensorsFile.DisposeAll(storages.Values);
        }
    }

    private static void CheckView(string path, string name, TensorRef t)
    {
        string what = $"tensor {Quote(name)}";
        string show = $"size [{string.Join(",", t.Size)}], stride [{string.Join(",", t.Stride)}], offset {t.Offset}";
        if (t.Size.Length != t.Stride.Length)
            throw Error(path, $"{what}: size has {t.Size.Length} dimensions but stride has {t.Stride.Length}");
        if (t.Size.Length > SafeTensorsFile.MaxDimensions)
            throw Error(path, $"{what} has {t.Size.Length} dimensions (at most {SafeTensorsFile.MaxDimensions} allowed)");
        if (t.Offset < 0 || t.Size.Any(d => d < 0) || t.Stride.Any(d => d < 0))
            throw Error(path, $"{what}: negative number in {show}");
        long numel = TensorBytes.CheckedNumel(t.Size)
            ?? throw Error(path, $"{what}: {show} has more elements than a 64-bit count holds");
        long storageNumel = t.Storage.Numel;
        if (numel == 0)
        {
            if (t.Offset > storageNumel)
                throw Error(path, $"{what}: offset {t.Offset} is beyond its storage {Quote(t.Storage.Key)} of {storageNumel} elements");
            return;
        }
        long last;
        try
        {
            last = t.Offset;
            for (int i = 0; i < t.Size.Length; i++) last = checked(last + (t.Size[i] - 1) * t.Stride[i]);
        }
        catch (OverflowException)
        {
            throw Error(path, $"{what}: {show} reaches beyond a 64-bit index");
        }
        if (last >= storageNumel)
            throw Error(path, $"{what}: {show} reaches element {last} but its storage {Quote(t.Storage.Key)} has only {storageNumel}");
        // Overlapping strides (an expanded view) could make a tiny storage look like a huge tensor.
        if (numel > storageNumel)
            throw Error(path, $"{what}: {show} has {numel} elements, more than its storage {Quote(t.Storage.Key)} holds ({storageNumel}); a state dict never needs that");
    }

    /// <summary>Refuses entries whose declared size cannot be honest, before anything is allocated for them.</summary>
    private static void CheckEntrySize(string path, long fileLength, ZipArchiveEntry entry)
    {
        if (entry.CompressedLength > fileLength)
            throw Error(path, $"zip entry {Quote(entry.FullName)} claims {entry.CompressedLength} compressed bytes but the file has only {fileLength} (truncated?)");
        bool stored = entry.CompressedLength == entry.Length;
        if (!stored && entry.Length > entry.CompressedLength * MaxDeflateRatio + 1024)
            throw Error(path, $"zip entry {Quote(entry.FullName)} claims {entry.Length} bytes from {entry.CompressedLength} compressed bytes, which deflate cannot do");
    }

    private static byte[] ReadEntry(string path, long fileLength, ZipArchiveEntry entry, long maxBytes)
    {
        if (entry.Length > maxBytes)
            throw Error(path, $"zip entry {Quote(entry.FullName)} is {entry.Length} bytes, more than the {maxBytes} allowed");
        CheckEntrySize(path, fileLength, entry);
        var bytes = new byte[entry.Length];
        using var stream = entry.Open();
        stream.ReadExactly(bytes);
        if (stream.ReadByte() != -1)
            throw Error(path, $"zip entry {Quote(entry.FullName)} holds more than its declared {entry.Length} bytes");
        CheckCrc(path, entry, ZipCrc32.Append(0, bytes));
        return bytes;
    }

    /// <summary>Detects corruption (a bad download, a flipped bit). A CRC of 0 on non-empty data is taken as
    /// "not recorded" (PyTorch can be told to skip computing it).</summary>
    private static void CheckCrc(string path, ZipArchiveEntry entry, uint actual)
    {
        if (entry.Crc32 != actual && !(entry.Crc32 == 0 && entry.Length > 0))
            throw Error(path, $"zip entry {Quote(entry.FullName)} is corrupt: its CRC-32 is {actual:x8} but the archive records {entry.Crc32:x8}");
    }

    private static BertSharpException Error(string path, string problem, Exception? inner = null) =>
        CheckpointErrors.Error(path, problem, inner);

    private static string Quote(string s) => CheckpointErrors.Quote(s);

    // ------------------------------------------------------------------ the pickle's vocabulary

    internal sealed record StorageKind(string Name, ScalarType Type, int Size);

    internal sealed record StorageRef(StorageKind Kind, string Key, string Location, long Numel);

    internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride)
    {
        public override string ToString() => $"a tensor of size [{string.Join(",", Size)}]";
    }

    private sealed record Callable(string FullName)
    {
        public override string ToString() => FullName;
    }

    private static readonly Dictionary<string, StorageKind> StorageKinds = new StorageKind[]
    {
        new("FloatStorage", ScalarType.Float32, 4),
        new("DoubleStorage", ScalarType.Float64, 8),
        new("HalfStorage", ScalarType.Float16, 2),
        new("BFloat16Storage", ScalarType.BFloat16, 2),
        new("LongStorage", ScalarType.Int64, 8),
        new("IntStorage", ScalarType.Int32, 4),
        new("ShortStorage", ScalarType.Int16, 2),
        new("CharStorage", ScalarType.Int8, 1),
        new("ByteStorage", ScalarType.Byte, 1),
        new("BoolStorage", ScalarType.Bool, 1),
    }.ToDictionary(k => "torch." + k.Name, StringComparer.Ordinal);

    private const string OrderedDict = "collections.OrderedDict";
    private const string RebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
    private const string RebuildParameter = "torch._utils._rebuild_parameter";

    /// <summary>What a state-dict pickle may reference, and what its calls mean.</summary>
    private sealed class StateDictPolicy(string path) : IUnpicklerPolicy
    {
        private readonly Dictionary<string, StorageRef> _storages = new(StringComparer.Ordinal);

        public object ResolveGlobal(string module, string name)
        {
            string full = module + "." + name;
            if (StorageKinds.TryGetValue(full, out var kind)) return kind;
            if (full is OrderedDict or RebuildTensorV2 or RebuildParameter) return new Callable(full);
            throw new BertSharpException($"refusing to load {path}: it references {full}, which a state dict never needs");
        }

        public object? PersistentLoad(object? pid)
        {
            // ('storage', torch.FloatStorage, key, location, numel)
            if (pid is not PickleTuple { Items: ["storage", StorageKind kind, string key, string location, long numel] })
                throw Error(path, $"unexpected persistent id {Describe(pid)}; expected ('storage', storage type, key, location, numel)");
            if (numel < 0 || numel > long.MaxValue / 8)
                throw Error(path, $"storage {Quote(key)} claims {numel} elements");
            var s = new StorageRef(kind, key, location, numel);
            if (_storages.TryGetValue(key, out var seen))
            {
                if (seen.Kind != kind || seen.Numel != numel)
                    throw Error(path, $"storage {Quote(key)} is described both as {seen.Numel} x {seen.Kind.Name} and as {numel} x {kind.Name}");
                return seen;
            }
            _storages.Add(key, s);
            return s;
        }

        public object? Reduce(object? callable, PickleTuple args)
        {
            var a = args.Items;
            switch ((callable as Callable)?.FullName)
            {
                case OrderedDict:
                    if (a.Length != 0) throw Error(path, $"{OrderedDict} is called with {a.Length} arguments; a state dict pickle passes none");
                    return new PickleDict();
                case RebuildTensorV2:
                    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                    if (a is not [StorageRef storage, long offset, PickleTuple size, PickleTuple stride, bool, PickleDict hooks, ..] || a.Length > 7
                        || (a.Length == 7 && a[6] is not PickleDict))
                        throw Error(path, $"{RebuildTensorV2} is called with unexpected arguments ({string.Join(", ", a.Select(Describe))})");
                    if (hooks.Count != 0)
                        throw Error(path, "a tensor carries backward hooks, which a state dict never needs");
                    return new TensorRef(storage, offset, Longs(size, "size"), Longs(stride, "stride"));
                case RebuildParameter:
                    // (data, requires_grad, backward_hooks)
                    if (a is not [TensorRef data, bool, PickleDict phooks])
                        throw Error(path, $"{RebuildParameter} is called with unexpected arguments ({string.Join(", ", a.Select(Describe))})");
                    if (phooks.Count != 0)
                        throw Error(path, "a parameter carries backward hooks, which a state dict never needs");
                    return data;
                default:
                    throw Error(path, $"the pickle calls {Describe(callable)}, which a state dict never needs");
            }
        }

        public void Build(object? target, object? state)
        {
            // OrderedDict state dicts carry a '_metadata' attribute (module versions); it is not needed.
            if (target is PickleDict) return;
            throw Error(path, $"the pickle sets the state of {Describe(target)}, which a state dict never needs");
        }

        private long[] Longs(PickleTuple t, string what)
        {
            var result = new long[t.Items.Length];
            for (int i = 0; i < result.Length; i++)
            {
                result[i] = t.Items[i] as long? ?? throw Error(path, $"a tensor {what} contains {Describe(t.Items[i])}, not an integer");
            }
            return result;
        }

        private static string Describe(object? v) => v switch
        {
            StorageKind k => "torch." + k.Name,
            StorageRef s => $"storage {CheckpointErrors.Quote(s.Key)}",
            PickleTuple t => "(" + string.Join(", ", t.Items.Take(8).Select(x => x is PickleTuple ? "tuple" : Describe(x))) + (t.Items.Length > 8 ? ", ...)" : ")"),
            _ => RestrictedUnpickler.Describe(v),
        };
    }
}
