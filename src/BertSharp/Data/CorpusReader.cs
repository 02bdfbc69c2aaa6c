using System.Text.Json;

namespace BertSharp.Data;

/// <summary>Pre-training corpus file formats.</summary>
public enum CorpusFormat
{
    /// <summary>WikiText tokenized release (<c>wiki.*.tokens</c>): one paragraph per line, <c> = Title = </c>
    /// starts an article (a document), <c> = = Section = = </c> lines are headings.</summary>
    WikiText,

    /// <summary>Plain text: documents separated by blank lines; a line may hold several sentences.</summary>
    PlainText,

    /// <summary>JSON Lines: one <c>{"text": "..."}</c> object per line, each a document.</summary>
    JsonLines,
}

/// <summary>Options for <see cref="CorpusReader"/>. The defaults suit WordPiece pre-training.</summary>
public sealed record CorpusReaderOptions
{
    public static CorpusReaderOptions Default { get; } = new();

    /// <summary>Longest accepted line in characters; a longer one is an error naming file:line.</summary>
    public int MaxLineLength { get; init; } = TextLineReader.DefaultMaxLineLength;

    /// <summary>
    /// WikiText: undo the tokenizer's number and hyphen escapes, <c>1 @,@ 000 @.@ 5</c> → <c>1,000.5</c> and
    /// <c>red @-@ tipped</c> → <c>red-tipped</c> (the spaces around the escape go too, restoring the original
    /// text). Default true: left escaped, BERT's basic tokenizer would split <c>@-@</c> into three tokens
    /// <c>@ - @</c>, wasting sequence length on ~20,000 stray <c>@</c>s and teaching the vocabulary a
    /// frequent <c>@</c> that real text never has; and the spaced <c>0 @.@ 7</c> would also look like a
    /// sentence end to the splitter. Un-escaped, the basic tokenizer still splits <c>1,000.5</c> at its
    /// punctuation, so no information is lost.
    /// </summary>
    public bool WikiTextUnescape { get; init; } = true;

    /// <summary>
    /// WikiText: what replaces its rare-word marker <c>&lt;unk&gt;</c>; null keeps <c>&lt;unk&gt;</c>. Default
    /// <c>[UNK]</c>, BERT's unknown token: a BERT tokenizer that splits on special tokens (HF, and
    /// Microsoft.ML.Tokenizers' BertTokenizer by default) maps it straight to the [UNK] id, so the ~2.6% of
    /// WikiText-2 words that are <c>&lt;unk&gt;</c> become one token each, as they were meant to. Kept as
    /// <c>&lt;unk&gt;</c>, the basic tokenizer would cut each into <c>&lt; unk &gt;</c>, three tokens, and a
    /// trained vocabulary would spend entries on, and the model learn, a frequent word "unk".
    /// </summary>
    public string? WikiTextUnknownToken { get; init; } = "[UNK]";

    /// <summary>JSONL: the name of the string field holding the document text.</summary>
    public string JsonTextField { get; init; } = "text";
}

/// <summary>
/// Streams pre-training documents (<see cref="Document"/>) from corpus files. Every reader follows the one
/// text-input rule of <see cref="TextLineReader"/>: UTF-8; a leading byte-order mark is skipped; names
/// ending in <c>.gz</c> are decompressed on the fly; LF and CRLF both end a line; invalid UTF-8 is an error
/// naming file:line; NUL bytes and other control characters are read as spaces; a line may be long, but one
/// over 1,000,000 characters is an error naming file:line. All errors are <see cref="BertSharpException"/>s
/// with a one-line message <c>path:line: problem</c>. Documents without sentences are skipped. Sentences are
/// split with <see cref="SentenceSplitter"/>; a line end always ends a sentence.
/// </summary>
public static class CorpusReader
{
    /// <summary>Reads <paramref name="path"/> in <paramref name="format"/>, or in the format its name tells
    /// (<see cref="DetectFormat"/>) when null. A missing file is an error now; the rest is read lazily.</summary>
    public static IEnumerable<Document> Read(string path, CorpusFormat? format = null, CorpusReaderOptions? options = null)
    {
        var f = format ?? DetectFormat(path);
        options ??= CorpusReaderOptions.Default;
        return f switch
        {
            CorpusFormat.WikiText => ReadWikiText(path, options),
            CorpusFormat.PlainText => ReadPlainText(path, options),
            CorpusFormat.JsonLines => ReadJsonLines(path, options),
            _ => throw new ArgumentOutOfRangeException(nameof(format)),
        };
    }

    /// <summary>The format a file name tells, ignoring a final <c>.gz</c>: <c>.tokens</c> WikiText, <c>.txt</c>
    /// plain text, <c>.jsonl</c> JSON Lines. Any other name is an error asking for an explicit format.</summary>
    public static CorpusFormat DetectFormat(string path)
    {
        string name = Path.GetFileName(path);
        if (name.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) name = name[..^3];
        string ext = Path.GetExtension(name).ToLowerInvariant();
        return ext switch
        {
            ".tokens" => CorpusFormat.WikiText,
            ".txt" => CorpusFormat.PlainText,
            ".jsonl" => CorpusFormat.JsonLines,
            _ => throw new BertSharpException(
                $"{path}: cannot tell the corpus format from the file name (expected .tokens, .txt or .jsonl, optionally + .gz); give the format explicitly (wikitext, text or jsonl)"),
        };
    }

    /// <summary>Parses a format name as the CLI spells it: <c>wikitext</c>, <c>text</c>/<c>txt</c>/<c>plain</c>,
    /// <c>jsonl</c>/<c>json</c> (case-insensitive); also the enum names.</summary>
    public static bool TryParseFormat(string? name, out CorpusFormat format)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "wikitext" or "tokens": format = CorpusFormat.WikiText; return true;
            case "text" or "txt" or "plain" or "plaintext": format = CorpusFormat.PlainText; return true;
            case "jsonl" or "json" or "jsonlines": format = CorpusFormat.JsonLines; return true;
            default: format = default; return false;
        }
    }

    // ---- WikiText ----

    /// <summary>Reads a WikiText <c>.tokens</c> file: one document per <c> = Title = </c> article (text before
    /// the first title, if any, forms a document of its own); section headings and titles are not text;
    /// each paragraph line is split into sentences after <see cref="CorpusReaderOptions.WikiTextUnescape"/>
    /// and <see cref="CorpusReaderOptions.WikiTextUnknownToken"/> are applied.</summary>
    public static IEnumerable<Document> ReadWikiText(string path, CorpusReaderOptions? options = null)
    {
        options ??= CorpusReaderOptions.Default;
        CheckExists(path);
        return Lazy(path, options, reader => ReadWikiText(reader, options));
    }

    /// <inheritdoc cref="ReadWikiText(string, CorpusReaderOptions?)"/>
    public static IEnumerable<Document> ReadWikiText(TextLineReader reader, CorpusReaderOptions? options = null)
    {
        options ??= CorpusReaderOptions.Default;
        string? source = null;
        var sentences = new List<string>();
        while (reader.TryReadLine(out var line))
        {
            switch (ClassifyWikiTextLine(line))
            {
                case WikiTextLine.Blank:
                case WikiTextLine.Heading:
                    continue;
                case WikiTextLine.Title:
                    if (sentences.Count > 0) yield return new Document(source!, sentences);
                    sentences = new List<string>();
                    source = reader.Location;
                    continue;
                default:
                    source ??= reader.Location;
                    SentenceSplitter.Split(CleanWikiText(line, options), sentences);
                    break;
            }
        }
        if (sentences.Count > 0) yield return new Document(source!, sentences);
    }

    internal enum WikiTextLine { Blank, Title, Heading, Text }

    /// <summary>` = Title = ` is a title, ` = = Section = = ` (any depth) a heading, all-space a blank.</summary>
    internal static WikiTextLine ClassifyWikiTextLine(string line)
    {
        var t = line.AsSpan().Trim();
        if (t.IsEmpty) return WikiTextLine.Blank;
        if (t.Length >= 3 && t[0] == '=' && t[1] == ' ' && t[^1] == '=' && t[^2] == ' ')
            return t[2] == '=' ? WikiTextLine.Heading : WikiTextLine.Title;
        return WikiTextLine.Text;
    }

    internal static string CleanWikiText(string line, CorpusReaderOptions options)
    {
        if (options.WikiTextUnescape && line.Contains('@'))
            line = line.Replace(" @-@ ", "-").Replace(" @,@ ", ",").Replace(" @.@ ", ".");
        if (options.WikiTextUnknownToken is { } unk && line.Contains("<unk>", StringComparison.Ordinal))
            line = line.Replace("<unk>", unk);
        return line;
    }

    // ---- plain text ----

    /// <summary>Reads plain text: blank (all-whitespace) lines separate documents; each line is split into
    /// sentences, and a line end always ends one.</summary>
    public static IEnumerable<Document> ReadPlainText(string path, CorpusReaderOptions? options = null)
    {
        options ??= CorpusReaderOptions.Default;
        CheckExists(path);
        return Lazy(path, options, reader => ReadPlainText(reader));
    }

    /// <inheritdoc cref="ReadPlainText(string, CorpusReaderOptions?)"/>
    public static IEnumerable<Document> ReadPlainText(TextLineReader reader)
    {
        string? source = null;
        var sentences = new List<string>();
        while (reader.TryReadLine(out var line))
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                if (sentences.Count > 0) yield return new Document(source!, sentences);
                sentences = new List<string>();
                source = null;
                continue;
            }
            source ??= reader.Location;
            SentenceSplitter.Split(line, sentences);
        }
        if (sentences.Count > 0) yield return new Document(source!, sentences);
    }

    // ---- JSON Lines ----

    /// <summary>Reads JSON Lines: each non-blank line is one JSON object whose string field
    /// <see cref="CorpusReaderOptions.JsonTextField"/> (default <c>text</c>) is one document; other fields are
    /// ignored. Line breaks inside the text end sentences. Invalid JSON, a non-object, or a missing or
    /// non-string field is an error naming file:line.</summary>
    public static IEnumerable<Document> ReadJsonLines(string path, CorpusReaderOptions? options = null)
    {
        options ??= CorpusReaderOptions.Default;
        CheckExists(path);
        return Lazy(path, options, reader => ReadJsonLines(reader, options));
    }

    /// <inheritdoc cref="ReadJsonLines(string, CorpusReaderOptions?)"/>
    public static IEnumerable<Document> ReadJsonLines(TextLineReader reader, CorpusReaderOptions? options = null)
    {
        options ??= CorpusReaderOptions.Default;
        string field = options.JsonTextField;
        while (reader.TryReadLine(out var line))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            string text = ParseJsonText(reader, line, field);
            var sentences = new List<string>();
            foreach (var part in text.AsSpan().EnumerateLines())
                if (!part.IsWhiteSpace()) SentenceSplitter.Split(TextLineReader.ReplaceControlChars(part.ToString()), sentences);
            if (sentences.Count > 0) yield return new Document(reader.Location, sentences);
        }
    }

    static string ParseJsonText(TextLineReader reader, string line, string field)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw reader.Error($"invalid JSON: {TextLineReader.OneLine(e.Message)}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw reader.Error($"expected a JSON object with a \"{field}\" field, got {Kind(root.ValueKind)}");
            if (!root.TryGetProperty(field, out var value))
                throw reader.Error($"missing \"{field}\" field");
            if (value.ValueKind != JsonValueKind.String)
                throw reader.Error($"\"{field}\" must be a string, got {Kind(value.ValueKind)}");
            return value.GetString()!;
        }
    }

    static string Kind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    static void CheckExists(string path)
    {
        if (!File.Exists(path)) throw new BertSharpException($"{path}: file not found");
    }

    /// <summary>Opens <paramref name="path"/> at the first MoveNext and disposes it when the enumeration ends or
    /// is abandoned (a missing file was reported at the call already, by <see cref="CheckExists"/>).</summary>
    static IEnumerable<Document> Lazy(string path, CorpusReaderOptions options, Func<TextLineReader, IEnumerable<Document>> read)
    {
        using var reader = TextLineReader.Open(path, options.MaxLineLength);
        foreach (var d in read(reader)) yield return d;
    }
}
