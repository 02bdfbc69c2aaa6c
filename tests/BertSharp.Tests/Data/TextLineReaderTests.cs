using System.Text;
using BertSharp.Data;

namespace BertSharp.Tests.Data;

public class TextLineReaderTests
{
    static List<string> ReadAll(string path, int maxLineLength = TextLineReader.DefaultMaxLineLength)
    {
        using var r = TextLineReader.Open(path, maxLineLength);
        return r.ReadLines().ToList();
    }

    static byte[] Bytes(params object[] parts)
    {
        var ms = new MemoryStream();
        foreach (var p in parts)
        {
            if (p is string s) ms.Write(Encoding.UTF8.GetBytes(s));
            else ms.Write((byte[])p);
        }
        return ms.ToArray();
    }

    [Fact]
    public void LfCrlfAndMissingFinalNewline()
    {
        using var d = new TempDir();
        var path = d.Write("a.txt", "one\ntwo\r\nthree\r\n\nfive");
        Assert.Equal(new[] { "one", "two", "three", "", "five" }, ReadAll(path));
        Assert.Equal(new[] { "x" }, ReadAll(d.Write("b.txt", "x\n")));
        Assert.Equal(new[] { "", "" }, ReadAll(d.Write("c.txt", "\n\r\n")));
        Assert.Empty(ReadAll(d.Write("empty.txt", "")));
    }

    [Fact]
    public void LineNumbersAndLocation()
    {
        using var d = new TempDir();
        var path = d.Write("a.txt", "a\nb\n");
        using var r = TextLineReader.Open(path);
        Assert.Equal(0, r.LineNumber);
        Assert.True(r.TryReadLine(out _));
        Assert.True(r.TryReadLine(out var line));
        Assert.Equal("b", line);
        Assert.Equal($"{path}:2", r.Location);
        Assert.False(r.TryReadLine(out _));
    }

    [Fact]
    public void LeadingByteOrderMarkIsSkipped()
    {
        using var d = new TempDir();
        var path = d.WriteBytes("bom.txt", Bytes(new byte[] { 0xEF, 0xBB, 0xBF }, "héllo\r\nworld"));
        Assert.Equal(new[] { "héllo", "world" }, ReadAll(path));
        // A BOM-only file, and one shorter than a BOM.
        Assert.Empty(ReadAll(d.WriteBytes("bomonly.txt", new byte[] { 0xEF, 0xBB, 0xBF })));
        Assert.Equal(new[] { "a" }, ReadAll(d.WriteBytes("short.txt", Bytes("a"))));
    }

    [Fact]
    public void ControlCharactersBecomeSpaces()
    {
        using var d = new TempDir();
        var path = d.WriteBytes("ctl.txt", Bytes("a\0b\tc\u0001d\u007Fe\u0085f\rg\n"));
        Assert.Equal(new[] { "a b c d e f g" }, ReadAll(path));
        Assert.Equal("x y", TextLineReader.ReplaceControlChars("x\0y"));
        const string clean = "no controls";
        Assert.Same(clean, TextLineReader.ReplaceControlChars(clean));
    }

    [Fact]
    public void InvalidUtf8IsAnErrorNamingFileAndLine()
    {
        using var d = new TempDir();
        var path = d.WriteBytes("bad.txt", Bytes("ok\nfine\nbro", new byte[] { 0xC3, 0x28 }, "ken\nafter\n"));
        var e = Assert.Throws<BertSharpException>(() => ReadAll(path));
        Assert.StartsWith($"{path}:3: invalid UTF-8", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void InvalidUtf8FarIntoALargeFileReportsItsOwnLine()
    {
        using var d = new TempDir();
        var sb = new StringBuilder();
        for (int i = 0; i < 20_000; i++) sb.Append("line number ").Append(i).Append(" with some text\n");
        var path = d.WriteBytes("big.txt", Bytes(sb.ToString(), new byte[] { 0xFF }, "\nmore\n"));
        var e = Assert.Throws<BertSharpException>(() => ReadAll(path));
        Assert.StartsWith($"{path}:20001: invalid UTF-8 (0xFF)", e.Message);
    }

    [Fact]
    public void TruncatedMultiByteSequenceAtEndOfFileIsAnError()
    {
        using var d = new TempDir();
        var path = d.WriteBytes("trunc.txt", Bytes("a\n", new byte[] { 0xE2, 0x82 }));
        var e = Assert.Throws<BertSharpException>(() => ReadAll(path));
        Assert.StartsWith($"{path}:2: invalid UTF-8", e.Message);
    }

    [Fact]
    public void OverlongLineIsAnError()
    {
        using var d = new TempDir();
        var path = d.Write("long.txt", "short\n" + new string('x', 101) + "\n");
        var e = Assert.Throws<BertSharpException>(() => ReadAll(path, maxLineLength: 100));
        Assert.Equal($"{path}:2: line is longer than 100 characters", e.Message);

        // Exactly at the limit is fine, also when every character takes several bytes.
        Assert.Equal(100, ReadAll(d.Write("ok.txt", new string('é', 100)), maxLineLength: 100)[0].Length);
        Assert.Equal(100, ReadAll(d.Write("ok2.txt", new string('€', 100) + "\r\n"), maxLineLength: 100)[0].Length);
    }

    [Fact]
    public void EndlessLineStopsEarlyInsteadOfBufferingTheFile()
    {
        // 5 MB without a newline, limit 1,000 characters: the error comes after ~3 KB of buffering.
        using var stream = new EndlessStream();
        using var r = new TextLineReader(stream, "endless", maxLineLength: 1000);
        var e = Assert.Throws<BertSharpException>(() => r.TryReadLine(out _));
        Assert.Equal("endless:1: line is longer than 1,000 characters", e.Message);
        Assert.True(stream.Position < 200_000, $"read {stream.Position} bytes");
    }

    [Fact]
    public void LongLinesAcrossBufferBoundariesReadWhole()
    {
        using var d = new TempDir();
        string a = new string('a', 300_000), b = string.Concat(Enumerable.Repeat("ü€😀", 50_000));
        var path = d.Write("long.txt", a + "\n" + b + "\r\n" + "end");
        Assert.Equal(new[] { a, b, "end" }, ReadAll(path));
    }

    [Fact]
    public void GzipIsReadTransparently()
    {
        using var d = new TempDir();
        var path = d.WriteBytes("a.txt.gz", Bytes(new byte[] { 0xEF, 0xBB, 0xBF }, "one\r\ntwo\n"));
        Assert.Equal(new[] { "one", "two" }, ReadAll(path));
    }

    [Fact]
    public void CorruptGzipIsAnError()
    {
        using var d = new TempDir();
        var path = d.File("bad.txt.gz");
        File.WriteAllBytes(path, [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
        var e = Assert.Throws<BertSharpException>(() => ReadAll(path));
        Assert.StartsWith($"{path}:1: corrupt compressed data", e.Message);
    }

    [Fact]
    public void GzipDataWithoutTheGzNameGetsAHint()
    {
        using var d = new TempDir();
        var gz = d.Write("x.txt.gz", "hello\n");
        var path = d.File("x.txt");
        File.Copy(gz, path);
        var e = Assert.Throws<BertSharpException>(() => ReadAll(path));
        Assert.StartsWith($"{path}:1: invalid UTF-8", e.Message);
        Assert.EndsWith("(the file looks gzip-compressed: name it *.gz)", e.Message);
    }

    [Fact]
    public void MissingFileIsAnError()
    {
        using var d = new TempDir();
        var path = d.File("nope.txt");
        var e = Assert.Throws<BertSharpException>(() => TextLineReader.Open(path));
        Assert.Equal($"{path}: file not found", e.Message);
    }

    sealed class EndlessStream : Stream
    {
        long _pos;
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_pos >= 5_000_000) return 0;
            Array.Fill(buffer, (byte)'x', offset, count);
            _pos += count;
            return count;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
