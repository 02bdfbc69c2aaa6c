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
    public static byte[] StateDictPickle(IEnumerable<TorchEntry> entries, bool asParameters = false)
    {
        var p = new PickleBuilder().Proto().Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
        foreach (var e in entries)
        {
            p.Str(e.Name);
            if (asParameters) p.Global("torch._utils", "_rebuild_parameter").Mark();
            p.Global("torch._utils", "_rebuild_tensor_v2").Mark();
            p.Mark().Str("storage").Global("torch", e.StorageType).Str(e.Key).Str("cpu").Int(e.StorageNumel).Tuple().Op('Q');
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

    /// <summary>A checkpoint whose data.pkl is <paramref name="pickle"/>, with no storages.</summary>
    public static void WritePickleOnly(string path, byte[] pickle) =>
        WriteZip(path, [("data.pkl", pickle), ("version", Encoding.ASCII.GetBytes("3\n"))]);
}
