using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.IO.Compression;
using System.Text;

namespace BertSharp.Data;

/// <summary>
/// Reads a text file line by line under the one text-input rule that every BertSharp reader follows
/// (<see cref="InputRule"/>):
/// <list type="bullet">
/// <item>UTF-8; a leading byte-order mark is skipped; a name ending in <c>.gz</c> is decompressed on the fly.</item>
/// <item>LF and CRLF both end a line (a lone CR is a control character, below).</item>
/// <item>Invalid UTF-8 is an error naming <c>file:line</c>.</item>
/// <item>NUL bytes and other control characters (Unicode category Cc: U+0000–U+001F, U+007F–U+009F, tab
/// included) are read as a space.</item>
/// <item>Lines may be long, but one line over <see cref="MaxLineLength"/> characters (default 1,000,000) is an
/// error naming <c>file:line</c>; memory stays bounded by that limit, never by the file.</item>
/// </list>
/// Every error is a <see cref="BertSharpException"/> with a one-line message <c>path:line: problem</c>.
/// The reader works on bytes (a vectorised search for '\n', then a strict decode of that one line), so an
/// invalid byte is reported on exactly its own line, and no regex or per-char state machine is involved.
/// </summary>
public sealed class TextLineReader : IDisposable
{
    /// <summary>The longest line (in characters, after decoding) any reader accepts by default.</summary>
    public const int DefaultMaxLineLength = 1_000_000;

    /// <summary>The text-input rule in one paragraph, for CLI help and docs.</summary>
    public const string InputRule =
        "Text files are UTF-8 (a leading byte-order mark is skipped; names ending in .gz are decompressed); " +
        "LF and CRLF both end a line; invalid UTF-8 is an error naming file:line; NUL bytes and other control " +
        "characters are read as spaces (tabs too, except where they separate the fields of a table or a pair); " +
        "a line may be long, but one over 1,000,000 characters is an error naming file:line.";

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    static readonly SearchValues<char> ControlChars = SearchValues.Create(
        Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21)).Select(i => (char)i).ToArray());

    static readonly SearchValues<char> ControlCharsButTab = SearchValues.Create(
        Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21)).Where(i => i != '\t').Select(i => (char)i).ToArray());

    readonly Stream _stream;
    readonly bool _ownsStream;
    byte[] _buf;
    int _start, _end;      // unread bytes are _buf[_start.._end)
    bool _eof, _bomChecked, _disposed;

    /// <summary>Keep tab characters instead of reading them as spaces: the field separator of tab-separated
    /// files (TSV, CoNLL columns, STS-B). Every other control character is still read as a space.</summary>
    public bool KeepTabs { get; init; }

    /// <summary>Creates a reader over <paramref name="stream"/> (already decompressed); <paramref name="sourceName"/>
    /// is the name used in error messages.</summary>
    public TextLineReader(Stream stream, string sourceName, int maxLineLength = DefaultMaxLineLength, bool ownsStream = true)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineLength, 1);
        _stream = stream;
        _ownsStream = ownsStream;
        SourceName = sourceName;
        MaxLineLength = maxLineLength;
        _buf = new byte[64 * 1024];
    }

    /// <summary>Opens <paramref name="path"/>, decompressing it if its name ends in <c>.gz</c>.</summary>
    public static TextLineReader Open(string path, int maxLineLength = DefaultMaxLineLength, bool keepTabs = false)
    {
        Stream stream = OpenFile(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
            stream = new GZipStream(stream, CompressionMode.Decompress);
        return new TextLineReader(stream, path, maxLineLength) { KeepTabs = keepTabs };
    }

    /// <summary>Opens a file for sequential reading; a missing or unreadable file is a one-line
    /// <see cref="BertSharpException"/>.</summary>
    internal static FileStream OpenFile(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BertSharpException($"{path}: file not found");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BertSharpException($"{path}: cannot open: {OneLine(e.Message)}", e);
        }
    }

    /// <summary>The name used in error messages (the path for <see cref="Open"/>).</summary>
    public string SourceName { get; }

    /// <summary>1-based number of the line last returned (0 before the first).</summary>
    public int LineNumber { get; private set; }

    /// <summary>Longest accepted line, in characters.</summary>
    public int MaxLineLength { get; }

    /// <summary><c>path:line</c> of the line last returned.</summary>
    public string Location => $"{SourceName}:{LineNumber}";

    /// <summary>An error about the line last returned: <c>path:line: message</c>.</summary>
    public BertSharpException Error(string message, Exception? inner = null) =>
        inner is null ? new BertSharpException($"{Location}: {message}") : new BertSharpException($"{Location}: {message}", inner);

    /// <summary>Reads the next line without its line ending; false at the end of the input.</summary>
    public bool TryReadLine([NotNullWhen(true)] out string? line)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_bomChecked)
        {
            while (_end < 3 && !_eof) Fill();
            if (_end >= 3 && _buf[0] == 0xEF && _buf[1] == 0xBB && _buf[2] == 0xBF) _start = 3;
            _bomChecked = true;
        }
        int searchFrom = _start;
        while (true)
        {
            int nl = _buf.AsSpan(searchFrom, _end - searchFrom).IndexOf((byte)'\n');
            if (nl >= 0)
            {
                int lineEnd = searchFrom + nl;
                line = Decode(_start, lineEnd);
                _start = lineEnd + 1;
                return true;
            }
            if (_eof)
            {
                if (_start == _end) { line = null; return false; }
                line = Decode(_start, _end);
                _start = _end;
                return true;
            }
            // Every character takes at most 3 UTF-8 bytes per UTF-16 char (4 bytes make 2 chars), so more than
            // 3 * limit bytes (+ CR) cannot decode to an acceptable line: stop before buffering any more of it.
            if (_end - _start > 3L * MaxLineLength + 1)
            {
                LineNumber++;
                throw Error($"line is longer than {MaxLineLength:N0} characters");
            }
            searchFrom = _end;
            if (_end == _buf.Length)
            {
                if (_start > 0)
                {
                    Buffer.BlockCopy(_buf, _start, _buf, 0, _end - _start);
                    searchFrom -= _start;
                    _end -= _start;
                    _start = 0;
                }
                else
                {
                    Array.Resize(ref _buf, (int)Math.Min((long)_buf.Length * 2, Array.MaxLength));
                }
            }
            Fill();
        }
    }

    /// <summary>All remaining lines, streamed.</summary>
    public IEnumerable<string> ReadLines()
    {
        while (TryReadLine(out var line)) yield return line;
    }

    void Fill()
    {
        int n;
        try
        {
            n = _stream.Read(_buf, _end, _buf.Length - _end);
        }
        catch (InvalidDataException e)
        {
            throw new BertSharpException($"{SourceName}:{LineNumber + 1}: corrupt compressed data: {OneLine(e.Message)}", e);
        }
        catch (IOException e)
        {
            throw new BertSharpException($"{SourceName}:{LineNumber + 1}: read error: {OneLine(e.Message)}", e);
        }
        if (n == 0) _eof = true;
        else _end += n;
    }

    string Decode(int start, int end)
    {
        LineNumber++;
        if (end > start && _buf[end - 1] == (byte)'\r') end--;
        string s;
        try
        {
            s = StrictUtf8.GetString(_buf, start, end - start);
        }
        catch (DecoderFallbackException e)
        {
            string where = e.Index >= 0 ? $" at byte {e.Index + 1} of the line" : "";
            string bytes = e.BytesUnknown is { Length: > 0 } b ? $" (0x{Convert.ToHexString(b)})" : "";
            string hint = LineNumber == 1 && end - start >= 2 && _buf[start] == 0x1F && _buf[start + 1] == 0x8B
                ? " (the file looks gzip-compressed: name it *.gz)" : "";
            throw Error($"invalid UTF-8{bytes}{where}{hint}", e);
        }
        if (s.Length > MaxLineLength) throw Error($"line is longer than {MaxLineLength:N0} characters");
        return KeepTabs ? Replace(s, ControlCharsButTab) : ReplaceControlChars(s);
    }

    /// <summary>Returns <paramref name="s"/> with every control character (Cc) replaced by a space; the same
    /// string when there is none.</summary>
    public static string ReplaceControlChars(string s) => Replace(s, ControlChars);

    static string Replace(string s, SearchValues<char> chars)
    {
        int i = s.AsSpan().IndexOfAny(chars);
        if (i < 0) return s;
        return string.Create(s.Length, (s, i, chars), static (dst, st) =>
        {
            st.s.AsSpan().CopyTo(dst);
            var rest = dst[st.i..];
            int j = 0;
            while (j >= 0)
            {
                rest[j] = ' ';
                rest = rest[(j + 1)..];
                j = rest.IndexOfAny(st.chars);
            }
        });
    }

    internal static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_ownsStream) _stream.Dispose();
    }
}
