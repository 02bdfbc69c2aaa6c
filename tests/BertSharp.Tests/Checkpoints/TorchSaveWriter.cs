using System.IO.Compression;
using System.Text;

namespace BertSharp.Tests.Checkpoints;

/// <summary>Emits pickle opcodes, for hand-made (and deliberately broken) checkpoints.</summary>
internal sealed class PickleBuilder
{
    private readonly MemoryStream _ms = new();

    public PickleBuilder Raw(params byte[] bytes) { _ms.Write(bytes); return this; }
    public PickleBuilder Op(char op) => Raw((byte)op);
    public PickleBuilder Proto(byte v = 2) => Raw(0x80, v);
    public PickleBuilder Mark() => Op('(');
    public PickleBuilder Tuple() => Op('t');
    public PickleBuilder EmptyTuple() => Op(')');
    public PickleBuilder Reduce() => Op('R');
    public PickleBuilder Stop() => Op('.');
    public PickleBuilder False() => Raw(0x89);
    public PickleBuilder Global(string module, string name) => Op('c').Raw(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));

    public PickleBuilder Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return Op('X').Raw(BitConverter.GetBytes(b.Length)).Raw(b);
    }

    public PickleBuilder Int(long v)
    {
        if (v is >= int.MinValue and <= int.MaxValue) return Op('J').Raw(BitConverter.GetBytes((int)v));
        return Raw(0x8a, 8).Raw(BitConverter.GetBytes(v)); // LONG1
    }

    public PickleBuilder IntTuple(IEnumerable<long> values)
    {
        Mark();
        foreach (var v in values) Int(v);
        return Tuple();
    }

    public byte[] ToArray() => _ms.ToArray();
}

/// <summary>One state-dict entry: a view onto storage <c>Key</c> as torch.save describes it.</summary>
internal sealed record TorchEntry(string Name, string StorageType, string Key, long StorageNumel, long Offset, long[] Size, long[] Stride);

/// <summary>
/// Writes files shaped like <c>torch.save(state_dict)</c> output (zip + protocol-2 pickle), so the reader can be
/// tested on layouts the fixture does not have (other dtypes, strided views, offsets) and on broken ones.
/// </summary>
internal static class TorchSaveWriter
{
    /// <summary>The pickle torch.save writes for an OrderedDict of tensors.</summary>
    public static byte[] StateDictPickle(IEnumerable<TorchEntry> entries, bool asParameters = false, bool legacy = false)
    {
        var p = new PickleBuilder().Proto().Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
        foreach (var e in entries)
        {
            p.Str(e.Name);
            if (asParameters) p.Global("torch._utils", "_rebuild_parameter").Mark();
            p.Global("torch._utils", "_rebuild_tensor_v2").Mark();
            p.Mark().Str("storage").Global("torch", e.StorageType).Str(e.Key).Str("cpu").Int(e.StorageNumel);
            if (legacy) p.Op('N'); // view metadata
            p.Tuple().Op('Q');
            p.Int(e.Offset).IntTuple(e.Size).IntTuple(e.Stride).False()
             .Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce();
            if (asParameters) p.False().Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce();
        }
        return p.Op('u').Stop().ToArray();
    }

    /// <summary>A zip archive with the given entries stored uncompressed under <paramref name="prefix"/>/.</summary>
    public static void WriteZip(string path, IEnumerable<(string Name, byte[] Data)> files, string prefix = "archive",
        CompressionLevel level = CompressionLevel.NoCompression)
    {
        using var fs = File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        foreach (var (name, data) in files)
        {
            var entry = zip.CreateEntry($"{prefix}/{name}", level);
            using var s = entry.Open();
            s.Write(data);
        }
    }

    /// <summary>A complete checkpoint: data.pkl, version, byteorder and the storages.</summary>
    public static void Write(string path, IEnumerable<TorchEntry> entries, IDictionary<string, byte[]> storages,
        string byteorder = "little", bool asParameters = false)
    {
        var files = new List<(string, byte[])>
        {
            ("data.pkl", StateDictPickle(entries, asParameters)),
            ("byteorder", Encoding.ASCII.GetBytes(byteorder)),
        };
        files.AddRange(storages.Select(kv => ("data/" + kv.Key, kv.Value)));
        files.Add(("version", Encoding.ASCII.GetBytes("3\n")));
        WriteZip(path, files);
    }

    public static readonly byte[] LegacyMagic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

    /// <summary>
    /// The legacy (PyTorch &lt; 1.6) layout, after torch/serialization.py <c>_legacy_save</c>: pickles of the magic
    /// number, the protocol version 1001, the system info and the state dict, then the pickled list of storage keys,
    /// then for each key an int64 element count and the raw bytes.
    /// </summary>
    public static void WriteLegacy(string path, IEnumerable<TorchEntry> entries, IList<(string Key, long Numel, byte[] Data)> storages,
        bool littleEndian = true, byte[]? mainPickle = null, long? countOverride = null)
    {
        using var fs = File.Create(path);
        fs.Write(LegacyMagic);
        fs.Write(new PickleBuilder().Proto().Raw((byte)'M', 0xe9, 0x03).Stop().ToArray());
        var sys = new PickleBuilder().Proto().Op('}').Mark()
            .Str("protocol_version").Raw((byte)'M', 0xe9, 0x03)
            .Str("little_endian").Raw(littleEndian ? (byte)0x88 : (byte)0x89)
            .Str("type_sizes").Op('}').Mark().Str("short").Int(2).Str("int").Int(4).Str("long").Int(4).Op('u')
            .Op('u').Stop();
        fs.Write(sys.ToArray());
        fs.Write(mainPickle ?? StateDictPickle(entries, legacy: true));
        var keys = new PickleBuilder().Proto().Op(']').Mark();
        foreach (var (key, _, _) in storages) keys.Str(key);
        fs.Write(keys.Op('e').Stop().ToArray());
        foreach (var (_, numel, data) in storages)
        {
            fs.Write(BitConverter.GetBytes(countOverride ?? numel));
            fs.Write(data);
        }
    }

    /// <summary>A checkpoint whose data.pkl is <paramref name="pickle"/>, with no storages.</summary>
    public static void WritePickleOnly(string path, byte[] pickle) =>
        WriteZip(path, [("data.pkl", pickle), ("version", Encoding.ASCII.GetBytes("3\n"))]);
}
