using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using BertSharp.Checkpoints;
using BertSharp.Data;

namespace BertSharp.Search;

/// <summary>
/// The file of an <see cref="EmbeddingIndex"/>, version 1, little-endian throughout:
/// <code>
/// offset size  field
///  0     8     magic "BSEMBIDX"
///  8     4     format version (1)
/// 12     4     flags: bit 0 the texts are stored; bit 1 the model's own vectors are unit length
/// 16     8     rows N
/// 24     4     dimension D
/// 28     4     length M of the model name (UTF-8 bytes)
/// 32     8     offset of the matrix's .npy header
/// 40     8     offset of the matrix (64-byte aligned)
/// 48     8     offset of the line table
/// 56     8     offset of the text bytes (0 without texts)
/// 64     8     length of the text bytes
/// 72     8     offset of the text offset table (0 without texts)
/// 80     8     file length
/// 88     4     CRC-32 of the tables: everything from the line table to the end of the file
/// 92     4     CRC-32 of bytes 0-91 and the model name
/// 96     M     model name, UTF-8 (a Hub id or a folder)
///              zeros up to a 64-byte boundary
///              .npy 1.0 header {'descr': '&lt;f4', 'fortran_order': False, 'shape': (N, D), }, padded to end at the matrix
///              matrix: N × D float32, row-major, each row unit length (or zero)
///              line table: N × int32, the 1-based corpus line of each row
///              text bytes: the texts in UTF-8, one after another
///              zeros up to an 8-byte boundary
///              text offset table: N + 1 int64, where each text starts in the text bytes (the last: their length)
/// </code>
/// numpy reads the matrix with <c>f.seek(npy_offset); np.load(f)</c>, or maps it with
/// <c>np.memmap(path, '&lt;f4', 'r', matrix_offset, (N, D))</c>. The CRCs catch a damaged header or table; the matrix
/// has none (checking it would read the whole matrix at every load, which mapping exists to avoid).
/// </summary>
internal static class EmbeddingIndexFile
{
    public static ReadOnlySpan<byte> Magic => "BSEMBIDX"u8;
    public const uint Version = 1;
    const int HeaderSize = 96;
    const uint TextsFlag = 1, ModelNormalizesFlag = 2;
    const int MaxModelNameBytes = 1 << 16, MaxDimension = 1 << 20;

    /// <summary>Where the sections of an index file lie, as its header says.</summary>
    internal sealed record Layout(int Count, int Dimension, string Model, bool HasTexts, bool ModelNormalizes,
        long NpyOffset, long MatrixOffset, long LinesOffset, long TextBytesOffset, long TextBytesLength, long TextOffsetsOffset, long FileLength);

    static long Align(long x, int to) => (x + to - 1) / to * to;

    public static void Write(string path, EmbeddingIndex index)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("index files are written on little-endian machines");
        AtomicFile.Write(path, s => WriteTo(s, index));
    }

    static unsafe void WriteTo(Stream s, EmbeddingIndex index)
    {
        int n = index.Count, d = index.Dimension;
        byte[] model = Encoding.UTF8.GetBytes(index.Model);
        long npyOffset = Align(HeaderSize + model.Length, 64);
        byte[] npy = NpyFile.Header(n, d);
        long matrixOffset = npyOffset + npy.Length;
        long linesOffset = matrixOffset + (long)n * d * sizeof(float);

        var start = new byte[npyOffset];   // the header is written last, once the CRCs and lengths are known
        model.CopyTo(start, HeaderSize);
        s.Write(start);
        s.Write(npy);
        int rowsPerWrite = Math.Max(1, (4 << 20) / (d * sizeof(float)));
        for (long row = 0; row < n; row += rowsPerWrite)
        {
            int rows = (int)Math.Min(rowsPerWrite, n - row);
            s.Write(new ReadOnlySpan<byte>(index.Row(row), rows * d * sizeof(float)));
        }

        uint crc = 0;
        void Put(ReadOnlySpan<byte> bytes)
        {
            crc = ZipCrc32.Append(crc, bytes);
            s.Write(bytes);
        }
        var lines = new int[Math.Min(n, 1 << 16)];
        for (int row = 0; row < n; row += lines.Length)
        {
            int m = Math.Min(lines.Length, n - row);
            for (int i = 0; i < m; i++) lines[i] = index.GetLine(row + i);
            Put(MemoryMarshal.AsBytes(lines.AsSpan(0, m)));
        }
        long textBytesOffset = 0, textBytesLength = 0, textOffsetsOffset = 0;
        if (index.HasTexts)
        {
            textBytesOffset = linesOffset + 4L * n;
            var offsets = new long[n + 1];
            var buffer = new byte[1024];
            for (int row = 0; row < n; row++)
            {
                string text = index.GetText(row)!;
                int max = Encoding.UTF8.GetMaxByteCount(text.Length);
                if (max > buffer.Length) buffer = new byte[Math.Max(max, buffer.Length * 2)];
                int len = Encoding.UTF8.GetBytes(text, buffer);
                Put(buffer.AsSpan(0, len));
                offsets[row + 1] = offsets[row] + len;
            }
            textBytesLength = offsets[n];
            textOffsetsOffset = Align(textBytesOffset + textBytesLength, 8);
            Put(new byte[textOffsetsOffset - textBytesOffset - textBytesLength]);
            Put(MemoryMarshal.AsBytes(offsets.AsSpan()));
        }
        long fileLength = s.Position;

        var header = new byte[HeaderSize];
        var h = header.AsSpan();
        Magic.CopyTo(h);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], (index.HasTexts ? TextsFlag : 0) | (index.ModelNormalizes ? ModelNormalizesFlag : 0));
        BinaryPrimitives.WriteInt64LittleEndian(h[16..], n);
        BinaryPrimitives.WriteInt32LittleEndian(h[24..], d);
        BinaryPrimitives.WriteInt32LittleEndian(h[28..], model.Length);
        BinaryPrimitives.WriteInt64LittleEndian(h[32..], npyOffset);
        BinaryPrimitives.WriteInt64LittleEndian(h[40..], matrixOffset);
        BinaryPrimitives.WriteInt64LittleEndian(h[48..], linesOffset);
        BinaryPrimitives.WriteInt64LittleEndian(h[56..], textBytesOffset);
        BinaryPrimitives.WriteInt64LittleEndian(h[64..], textBytesLength);
        BinaryPrimitives.WriteInt64LittleEndian(h[72..], textOffsetsOffset);
        BinaryPrimitives.WriteInt64LittleEndian(h[80..], fileLength);
        BinaryPrimitives.WriteUInt32LittleEndian(h[88..], crc);
        BinaryPrimitives.WriteUInt32LittleEndian(h[92..], ZipCrc32.Append(ZipCrc32.Append(0, h[..92]), model));
        s.Seek(0, SeekOrigin.Begin);
        s.Write(header);
        s.Seek(fileLength, SeekOrigin.Begin);
    }

    public static unsafe EmbeddingIndex Read(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("index files are read on little-endian machines");
        var fs = TextLineReader.OpenFile(path);
        try
        {
            var layout = ReadHeader(fs, path);
            var memory = new MappedVectorMemory(fs);   // owns the stream from here
            try
            {
                CheckTables(memory.Pointer, layout, path);
                return new EmbeddingIndex(memory, layout, path);
            }
            catch
            {
                memory.Dispose();
                throw;
            }
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    static BertSharpException Corrupt(string path, string what) =>
        new($"{path}: {what}: the index file is damaged; build it again");

    static Layout ReadHeader(FileStream fs, string path)
    {
        long length = fs.Length;
        var header = new byte[HeaderSize];
        int got = fs.ReadAtLeast(header, HeaderSize, throwOnEndOfStream: false);
        var h = header.AsSpan(0, got);
        if (got == 0) throw new BertSharpException($"{path}: the file is empty, not an embedding index (build one with `bert search index`)");
        if (!h[..Math.Min(got, Magic.Length)].SequenceEqual(Magic[..Math.Min(got, Magic.Length)]))
            throw new BertSharpException($"{path}: not an embedding index: it does not start with {Encoding.ASCII.GetString(Magic)} (build one with `bert search index`)");
        if (got < HeaderSize)
            throw Truncated(path, length, HeaderSize);
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(h[8..]);
        if (version != Version)
            throw new BertSharpException($"{path}: index format version {version}; this BertSharp reads version {Version}: build the index again with this version");
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(h[12..]);
        long count = BinaryPrimitives.ReadInt64LittleEndian(h[16..]);
        int dimension = BinaryPrimitives.ReadInt32LittleEndian(h[24..]);
        int modelBytes = BinaryPrimitives.ReadInt32LittleEndian(h[28..]);
        if (modelBytes < 0 || modelBytes > MaxModelNameBytes) throw Corrupt(path, $"a model name of {modelBytes} bytes in the header");
        if (length < HeaderSize + modelBytes) throw Truncated(path, length, HeaderSize + modelBytes);
        var model = new byte[modelBytes];
        fs.ReadExactly(model);
        uint headerCrc = ZipCrc32.Append(ZipCrc32.Append(0, h[..92]), model);
        if (headerCrc != BinaryPrimitives.ReadUInt32LittleEndian(h[92..])) throw Corrupt(path, "the header's checksum does not match");
        long fileLength = BinaryPrimitives.ReadInt64LittleEndian(h[80..]);
        if (length < fileLength) throw Truncated(path, length, fileLength);
        if (length > fileLength) throw Corrupt(path, $"{length - fileLength:N0} bytes past the end its header names");
        var layout = new Layout(
            Count: count is >= 0 and <= int.MaxValue ? (int)count : throw Corrupt(path, $"{count} rows in the header"),
            Dimension: dimension is >= 1 and <= MaxDimension ? dimension : throw Corrupt(path, $"dimension {dimension} in the header"),
            Model: Encoding.UTF8.GetString(model),
            HasTexts: (flags & TextsFlag) != 0,
            ModelNormalizes: (flags & ModelNormalizesFlag) != 0,
            NpyOffset: BinaryPrimitives.ReadInt64LittleEndian(h[32..]),
            MatrixOffset: BinaryPrimitives.ReadInt64LittleEndian(h[40..]),
            LinesOffset: BinaryPrimitives.ReadInt64LittleEndian(h[48..]),
            TextBytesOffset: BinaryPrimitives.ReadInt64LittleEndian(h[56..]),
            TextBytesLength: BinaryPrimitives.ReadInt64LittleEndian(h[64..]),
            TextOffsetsOffset: BinaryPrimitives.ReadInt64LittleEndian(h[72..]),
            FileLength: fileLength);
        long tablesEnd = layout.LinesOffset + 4L * layout.Count;
        bool consistent = layout.MatrixOffset % 64 == 0 && layout.MatrixOffset >= HeaderSize + modelBytes
            && layout.LinesOffset == layout.MatrixOffset + (long)layout.Count * layout.Dimension * sizeof(float)
            && (layout.HasTexts
                ? layout.TextBytesOffset == tablesEnd && layout.TextBytesLength >= 0
                  && layout.TextOffsetsOffset == Align(layout.TextBytesOffset + layout.TextBytesLength, 8)
                  && layout.TextOffsetsOffset + 8L * (layout.Count + 1) == fileLength
                : tablesEnd == fileLength);
        if (!consistent) throw Corrupt(path, "its header's sections do not fit together");
        return layout;
    }

    static BertSharpException Truncated(string path, long length, long expected) =>
        new($"{path}: truncated: the file has {length:N0} bytes of the {expected:N0} an index of its header needs (an interrupted copy?): copy it again or build it again");

    static unsafe void CheckTables(byte* p, Layout layout, string path)
    {
        uint crc = 0;
        for (long at = layout.LinesOffset; at < layout.FileLength;)
        {
            int n = (int)Math.Min(1 << 30, layout.FileLength - at);
            crc = ZipCrc32.Append(crc, new ReadOnlySpan<byte>(p + at, n));
            at += n;
        }
        if (crc != BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(p + 88, 4)))
            throw Corrupt(path, "the checksum of its line and text tables does not match");
        if (layout.HasTexts)
        {
            byte* offsets = p + layout.TextOffsetsOffset;
            if (Unsafe.ReadUnaligned<long>(offsets) != 0 || Unsafe.ReadUnaligned<long>(offsets + 8L * layout.Count) != layout.TextBytesLength)
                throw Corrupt(path, "its text offset table does not span its texts");
        }
    }
}
