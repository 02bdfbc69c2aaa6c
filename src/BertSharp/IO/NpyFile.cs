using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace BertSharp;

/// <summary>NumPy's .npy format (version 1.0) for a float32 matrix: what <c>numpy.load</c> reads as an array of
/// shape (rows, columns), dtype '&lt;f4', C order.</summary>
public static class NpyFile
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0];

    /// <summary>Writes the rows (all of <paramref name="columns"/> values) atomically.</summary>
    public static void Write(string path, IReadOnlyList<float[]> rows, int columns)
    {
        foreach (var (r, i) in rows.Select((r, i) => (r, i)))
            if (r.Length != columns) throw new ArgumentException($"row {i} has {r.Length} values, not {columns}", nameof(rows));
        AtomicFile.Write(path, stream =>
        {
            stream.Write(Header(rows.Count, columns));
            var buffer = new byte[columns * 4];
            foreach (var row in rows)
            {
                for (int j = 0; j < columns; j++) BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(j * 4), row[j]);
                stream.Write(buffer);
            }
        });
    }

    /// <summary>The magic, the version, the header length and the header dictionary padded with spaces so that
    /// the data starts at a multiple of 64 bytes, as NumPy writes it.</summary>
    internal static byte[] Header(int rows, int columns)
    {
        string dict = string.Create(CultureInfo.InvariantCulture, $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {columns}), }}");
        int unpadded = Magic.Length + 2 + dict.Length + 1;
        int total = (unpadded + 63) / 64 * 64;
        var text = dict + new string(' ', total - unpadded) + "\n";
        var header = new byte[total];
        Magic.CopyTo(header, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(Magic.Length), (ushort)text.Length);
        Encoding.ASCII.GetBytes(text, header.AsSpan(Magic.Length + 2));
        return header;
    }

    /// <summary>Reads a float32 C-order matrix written by <see cref="Write"/> or by NumPy.</summary>
    public static float[][] Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic.AsSpan(0, 6)))
            throw new BertSharpException($"{path}: not a .npy file (no \\x93NUMPY magic)");
        int major = bytes[6];
        int headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)) : (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        int dataStart = (major == 1 ? 10 : 12) + headerLength;
        string dict = Encoding.ASCII.GetString(bytes, major == 1 ? 10 : 12, headerLength);
        if (!dict.Contains("'descr': '<f4'") || !dict.Contains("'fortran_order': False"))
            throw new BertSharpException($"{path}: only little-endian float32 C-order arrays are read, the header says {dict.Trim()}");
        int open = dict.IndexOf("'shape': (", StringComparison.Ordinal) + "'shape': (".Length, close = dict.IndexOf(')', open);
        var dims = dict[open..close].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(d => int.Parse(d, CultureInfo.InvariantCulture)).ToArray();
        if (dims.Length != 2) throw new BertSharpException($"{path}: expected a 2-dimension array, the shape is ({dict[open..close]})");
        if (bytes.Length - dataStart != (long)dims[0] * dims[1] * 4) throw new BertSharpException($"{path}: truncated ({bytes.Length - dataStart} data bytes for shape ({dims[0]}, {dims[1]}))");
        var rows = new float[dims[0]][];
        for (int i = 0; i < dims[0]; i++)
        {
            rows[i] = new float[dims[1]];
            for (int j = 0; j < dims[1]; j++) rows[i][j] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(dataStart + (i * dims[1] + j) * 4));
        }
        return rows;
    }
}
