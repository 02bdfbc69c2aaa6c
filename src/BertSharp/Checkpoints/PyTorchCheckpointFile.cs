using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>
/// Reads a PyTorch state dict written by <c>torch.save(model.state_dict(), f)</c>. The zip format (PyTorch
/// 1.6 and later) holds <c>PREFIX/data.pkl</c> (the pickled dict), <c>PREFIX/data/KEY</c> (one raw little-endian
/// storage per key), <c>PREFIX/version</c> and, from PyTorch 2.x, <c>PREFIX/byteorder</c>. The legacy format
/// (PyTorch 0.4 to 1.5, found in older HuggingFace hub repositories) is also read: five pickles in a row (magic number,
/// protocol version 1001, system info, the dict, the list of storage keys), then each storage as an 8-byte
/// element count and its raw bytes.
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
    /// <summary>Pickles larger than this are refused (the fixture's 49-entry state dict takes 8.7 KB).</summary>
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
        var fs = CheckpointIO.OpenRead(path);
        using (fs)
        {
            try
            {
                if (IsLegacy(path, fs)) return LoadLegacy(path, fs);
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

    /// <summary>The legacy format's first pickle: PROTO 2, LONG1 of 10 bytes 0x1950a86a20f9469cfc6c, STOP.</summary>
    private static readonly byte[] LegacyMagic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

    /// <returns>True for the legacy format, false for a zip archive; throws for anything else.</returns>
    private static bool IsLegacy(string path, FileStream fs)
    {
        Span<byte> head = stackalloc byte[LegacyMagic.Length];
        int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        fs.Seek(0, SeekOrigin.Begin);
        if (n >= 4 && head[0] == 'P' && head[1] == 'K') return false;
        if (n == LegacyMagic.Length && head.SequenceEqual(LegacyMagic)) return true;
        if (n >= 2 && head[0] == 0x80)
            throw Error(path, "starts like a pickle but not like a torch.save file (no legacy magic number)");
        throw Error(path, n < 4
            ? $"the file is {fs.Length} bytes, too short for a PyTorch checkpoint"
            : "not a PyTorch checkpoint (a torch.save file is a zip archive, or a pickle in the legacy format)");
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
        var policy = new StateDictPolicy(path, legacy: false);
        var root = RestrictedUnpickler.Load(pickle, path, pklEntry.FullName, policy);
        var refs = ValidateStateDict(path, pklEntry.FullName, root);

        var storageEntries = new Dictionary<string, (StorageRef Storage, ZipArchiveEntry Entry)>(StringComparer.Ordinal);
        foreach (var s in refs.Select(r => r.Ref.Storage).DistinctBy(s => s.Key))
        {
            string entryName = prefix + "data/" + s.Key;
            if (!entries.TryGetValue(entryName, out var entry))
                throw Error(path, $"storage {Quote(s.Key)} has no zip entry {Quote(entryName)}");
            long expected = s.Bytes;
            if (entry.Length != expected)
                throw Error(path, $"storage {Quote(s.Key)} should hold {s.Numel} x {s.Kind.Size} = {expected} bytes ({s.Kind.Name}) but its zip entry has {entry.Length}");
            CheckEntrySize(path, fileLength, entry);
            storageEntries.Add(s.Key, (s, entry));
        }

        return Materialize(path, refs, storageEntries.Values.Select(se => (se.Storage, (Action<Tensor>)(t =>
        {
            using (var stream = se.Entry.Open())
            {
                TensorBytes.ReadInto(stream, t);
                if (stream.ReadByte() != -1)
                    throw Error(path, $"zip entry {Quote(se.Entry.FullName)} holds more than its declared {se.Entry.Length} bytes");
            }
            CheckCrc(path, se.Entry, TensorBytes.Crc32(t));
        }))));
    }

    private static Dictionary<string, Tensor> LoadLegacy(string path, FileStream fs)
    {
        long fileLength = fs.Length;
        // The pickles sit at the start of the file, before the storages. Read a first megabyte, and more
        // (up to MaxPickleBytes) only if they do not fit in it.
        long limit = Math.Min(fileLength, MaxPickleBytes);
        int size = (int)Math.Min(limit, 1 << 20);
        int pos;
        StateDictPolicy policy;
        List<(string Name, TensorRef Ref)> refs;
        PickleList keyList;
        while (true)
        {
            var head = new byte[size];
            fs.Seek(0, SeekOrigin.Begin);
            fs.ReadExactly(head);
            try
            {
                (pos, policy, refs, keyList) = ReadLegacyPickles(path, head);
                break;
            }
            catch (PickleTruncatedException) when (size < limit)
            {
                size = (int)Math.Min(limit, (long)size * 4);
            }
        }

        // Walk the storage records (8-byte element count + bytes) to validate them all before allocating.
        var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
        long offset = pos;
        Span<byte> countBytes = stackalloc byte[8];
        foreach (string key in keyList.Items.Cast<string>())
        {
            var s = policy.Storage(key)
                ?? throw Error(path, $"the storage-keys pickle lists {Quote(key)}, which no tensor references");
            if (offsets.ContainsKey(key))
                throw Error(path, $"the storage-keys pickle lists {Quote(key)} twice");
            if (fileLength - offset < 8)
                throw Error(path, $"the file ends before storage {Quote(key)} (truncated?)");
            fs.Seek(offset, SeekOrigin.Begin);
            fs.ReadExactly(countBytes);
            long count = BitConverter.ToInt64(countBytes);
            if (count != s.Numel)
                throw Error(path, $"storage {Quote(key)} should hold {s.Numel} elements ({s.Kind.Name}) but its record says {count}");
            if (fileLength - offset - 8 < s.Bytes)
                throw Error(path, $"storage {Quote(key)} needs {s.Bytes} bytes but the file has only {fileLength - offset - 8} left (truncated?)");
            offsets.Add(key, offset + 8);
            offset += 8 + s.Bytes;
        }
        foreach (var s in policy.Storages)
        {
            if (!offsets.ContainsKey(s.Key))
                throw Error(path, $"storage {Quote(s.Key)} is referenced but not in the storage-keys list");
        }

        var used = refs.Select(r => r.Ref.Storage).DistinctBy(s => s.Key);
        return Materialize(path, refs, used.Select(s => (s, (Action<Tensor>)(t =>
        {
            fs.Seek(offsets[s.Key], SeekOrigin.Begin);
            TensorBytes.ReadInto(fs, t);
        }))));
    }

    private static (int End, StateDictPolicy Policy, List<(string Name, TensorRef Ref)> Refs, PickleList Keys) ReadLegacyPickles(string path, byte[] head)
    {
        int pos = LegacyMagic.Length;
        var plain = new PlainDataPolicy(path);
        var version = RestrictedUnpickler.Load(head, pos, out pos, path, "the protocol-version pickle", plain);
        if (version is not 1001L)
            throw Error(path, $"legacy torch.save protocol version is {RestrictedUnpickler.Describe(version)}, expected 1001");
        var sysInfo = RestrictedUnpickler.Load(head, pos, out pos, path, "the system-info pickle", plain);
        if (sysInfo is PickleDict info && info.Items.FirstOrDefault(kv => kv.Key is "little_endian").Value is false)
            throw Error(path, "the checkpoint was written on a big-endian machine, which is not supported");

        var policy = new StateDictPolicy(path, legacy: true);
        var root = RestrictedUnpickler.Load(head, pos, out pos, path, "the state-dict pickle", policy);
        var refs = ValidateStateDict(path, "the state-dict pickle", root);
        var keysValue = RestrictedUnpickler.Load(head, pos, out pos, path, "the storage-keys pickle", plain);
        if (keysValue is not PickleList keyList || keyList.Items.Any(k => k is not string))
            throw Error(path, $"the storage-keys pickle holds {RestrictedUnpickler.Describe(keysValue)}, not a list of strings");
        return (pos, policy, refs, keyList);
    }

    /// <summary>The state dict's entries, each checked against its storage's size.</summary>
    private static List<(string Name, TensorRef Ref)> ValidateStateDict(string path, string what, object? root)
    {
        if (root is not PickleDict dict)
            throw Error(path, $"{what} holds {RestrictedUnpickler.Describe(root)}, not a state dict");
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
        return refs;
    }

    /// <summary>Allocates and fills each storage once (all sizes are validated by now), then hands out views.</summary>
    private static Dictionary<string, Tensor> Materialize(string path, List<(string Name, TensorRef Ref)> refs,
        IEnumerable<(StorageRef Storage, Action<Tensor> Fill)> storagesToRead)
    {
        var storages = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var result = new Dictionary<string, Tensor>(refs.Count, StringComparer.Ordinal);
        try
        {
            foreach (var (s, fill) in storagesToRead)
            {
                var t = empty([s.Numel], s.Kind.Type);
                storages.Add(s.Key, t);
                fill(t);
                if (s.Kind.Type == ScalarType.Bool && TensorBytes.FirstInvalidBool(t) is ( >= 0, var value) bad)
                    throw Error(path, $"bool storage {Quote(s.Key)} has byte value {value} at element {bad.Index} (must be 0 or 1)");
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
        CheckpointIO.Error(path, problem, inner);

    private static string Quote(string s) => CheckpointIO.Quote(s);

    // ------------------------------------------------------------------ the pickle's vocabulary

    internal sealed record StorageKind(string Name, ScalarType Type, int Size);

    internal sealed record StorageRef(StorageKind Kind, string Key, string Location, long Numel)
    {
        /// <summary>Cannot overflow: <see cref="StateDictPolicy.PersistentLoad"/> caps <see cref="Numel"/>.</summary>
        public long Bytes => Numel * Kind.Size;
    }

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

    /// <summary>For pickles that hold plain data only (the legacy format's header pickles).</summary>
    private sealed class PlainDataPolicy(string path) : IUnpicklerPolicy
    {
        public object ResolveGlobal(string module, string name) =>
            throw new BertSharpException($"refusing to load {path}: it references {module}.{name}, which a state dict never needs");

        public object? PersistentLoad(object? pid) => throw Error(path, "a header pickle has a persistent id");

        public object? Reduce(object? callable, PickleTuple args) => throw Error(path, "a header pickle calls a function");

        public void Build(object? target, object? state) => throw Error(path, "a header pickle sets an object's state");
    }

    /// <summary>What a state-dict pickle may reference, and what its calls mean.</summary>
    private sealed class StateDictPolicy(string path, bool legacy) : IUnpicklerPolicy
    {
        private readonly Dictionary<string, StorageRef> _storages = new(StringComparer.Ordinal);

        public IEnumerable<StorageRef> Storages => _storages.Values;

        public StorageRef? Storage(string key) => _storages.GetValueOrDefault(key);

        public object ResolveGlobal(string module, string name)
        {
            string full = module + "." + name;
            if (StorageKinds.TryGetValue(full, out var kind)) return kind;
            if (full is OrderedDict or RebuildTensorV2 or RebuildParameter) return new Callable(full);
            throw new BertSharpException($"refusing to load {path}: it references {full}, which a state dict never needs");
        }

        public object? PersistentLoad(object? pid)
        {
            // ('storage', torch.FloatStorage, key, location, numel), plus view metadata (None) in the legacy format
            if (!legacy && pid is not PickleTuple { Items: ["storage", StorageKind, string, string, long] })
                throw Error(path, $"unexpected persistent id {Describe(pid)}; expected ('storage', storage type, key, location, numel)");
            if (legacy && pid is not PickleTuple { Items: ["storage", StorageKind, string, string, long, _] })
                throw Error(path, $"unexpected persistent id {Describe(pid)}; expected ('storage', storage type, key, location, numel, view)");
            var items = ((PickleTuple)pid!).Items;
            var (kind, key, location, numel) = ((StorageKind)items[1]!, (string)items[2]!, (string)items[3]!, (long)items[4]!);
            if (legacy && items[5] is not null)
                throw Error(path, $"storage {Quote(key)} is a storage view (PyTorch 0.4 era), which is not supported");
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
            StorageRef s => $"storage {CheckpointIO.Quote(s.Key)}",
            PickleTuple t => "(" + string.Join(", ", t.Items.Take(8).Select(x => x is PickleTuple ? "tuple" : Describe(x))) + (t.Items.Length > 8 ? ", ...)" : ")"),
            _ => RestrictedUnpickler.Describe(v),
        };
    }
}
