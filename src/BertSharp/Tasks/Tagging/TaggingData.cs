using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BertSharp.Data;

namespace BertSharp.Tasks.Tagging;

/// <summary>A sentence as words with one tag per word (Tags null when unlabelled); <see cref="Source"/> is file:line.</summary>
public sealed record TaggedSentence(IReadOnlyList<string> Words, IReadOnlyList<string>? Tags, string Source = "");

/// <summary>
/// Reads word-tagging data: the NLTK Penn Treebank sample (treebank.zip, its folder, or single .mrg/.pos files),
/// CoNLL column files, or JSONL with a list of words and a list of tags per line.
/// </summary>
public static partial class TaggingData
{
    public static readonly string[] WordFields = ["tokens", "words"];
    public static readonly string[] TagFields = ["tags", "ner_tags", "pos_tags", "chunk_tags", "labels"];

    public static string DetectFormat(string path)
    {
        if (Directory.Exists(path)) return "ptb";
        string name = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? path[..^3] : path;
        return Path.GetExtension(name).ToLowerInvariant() switch
        {
            ".zip" => IsConllZip(path) ? "conll" : "ptb",
            ".mrg" or ".pos" => "ptb",
            ".jsonl" or ".json" or ".ndjson" => "jsonl",
            _ => "conll",
        };
    }

    public static ExampleSet<TaggedSentence> Read(string path, DataFileOptions o, bool requireTags = true)
    {
        string format = (o.Format ?? DetectFormat(path)).ToLowerInvariant();
        var set = format switch
        {
            "ptb" => ReadTreebank(path, o),
            "conll" => ReadConll(path, o),
            "jsonl" => ReadJsonl(path, o, requireTags),
            _ => throw new BertSharpException($"unknown tagging format '{format}' (ptb, conll, jsonl)"),
        };
        if (set.Examples.Count == 0) throw new BertSharpException($"{path}: no sentences{(o.Split != DataSplit.All && set.HasBuiltInSplit ? $" in the {o.Split.ToString().ToLowerInvariant()} part" : "")}");
        return set;
    }

    // ---------------------------------------------------------------- Penn Treebank

    [GeneratedRegex(@"wsj_(\d{4})\.(mrg|pos)$", RegexOptions.IgnoreCase)]
    private static partial Regex WsjFile();

    /// <summary>Which part of the treebank sample a file belongs to, by its number; null outside wsj_0001–wsj_0199.</summary>
    public static DataSplit? TreebankPart(string fileName)
    {
        var m = WsjFile().Match(fileName);
        if (!m.Success) return null;
        int n = int.Parse(m.Groups[1].Value);
        return n switch { >= 1 and <= 159 => DataSplit.Train, >= 160 and <= 179 => DataSplit.Dev, >= 180 and <= 199 => DataSplit.Test, _ => null };
    }

    static ExampleSet<TaggedSentence> ReadTreebank(string path, DataFileOptions o)
    {
        // (name for messages, opener) of each file, in name order
        var files = new List<(string Name, string Entry, Func<Stream> Open)>();
        ZipArchive? zip = null;
        try
        {
            if (Directory.Exists(path))
            {
                var all = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).ToList();
                var pick = all.Where(f => f.EndsWith(".mrg", StringComparison.OrdinalIgnoreCase)).ToList();
                if (pick.Count == 0) pick = all.Where(f => f.EndsWith(".pos", StringComparison.OrdinalIgnoreCase)).ToList();
                foreach (var f in pick.Order(StringComparer.Ordinal)) files.Add((f, Path.GetFileName(f), () => TextLineReader.OpenFile(f)));
            }
            else if (path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
            {
                try { zip = new ZipArchive(TextLineReader.OpenFile(path), ZipArchiveMode.Read); }
                catch (InvalidDataException e) { throw new BertSharpException($"{path}: not a zip archive: {e.Message}"); }
                var entries = zip.Entries.Where(e => e.FullName.EndsWith(".mrg", StringComparison.OrdinalIgnoreCase)).ToList();
                if (entries.Count == 0) entries = zip.Entries.Where(e => e.FullName.EndsWith(".pos", StringComparison.OrdinalIgnoreCase)).ToList();
                foreach (var e in entries.OrderBy(e => e.FullName, StringComparer.Ordinal)) files.Add(($"{path}:{e.FullName}", e.Name, e.Open));
            }
            else files.Add((path, Path.GetFileName(path), () => TextLineReader.OpenFile(path)));
            if (files.Count == 0) throw new BertSharpException($"{path}: no .mrg or .pos files");

            bool split = files.Count > 1 && files.All(f => TreebankPart(f.Entry) != null);
            var sentences = new List<TaggedSentence>();
            int traces = 0, filesRead = 0;
            foreach (var (name, entry, open) in files)
            {
                if (split && o.Split != DataSplit.All && TreebankPart(entry) != o.Split) continue;
                filesRead++;
                using var reader = new TextLineReader(open(), name);
                var parsed = entry.EndsWith(".pos", StringComparison.OrdinalIgnoreCase) ? ParsePos(reader) : ParseMrg(reader, ref traces);
                foreach (var s in parsed)
                {
                    if (o.MaxExamples is int max && sentences.Count >= max) break;
                    sentences.Add(s);
                }
            }
            string part = split && o.Split != DataSplit.All ? $" ({o.Split.ToString().ToLowerInvariant()} part: {filesRead} of {files.Count} files)" : $" ({filesRead} files)";
            var notes = new List<string> { $"{path}: {sentences.Count} sentences, {sentences.Sum(s => s.Words.Count)} words{part}" };
            if (traces > 0) notes.Add($"{path}: dropped {traces} -NONE- trace leaves");
            return new ExampleSet<TaggedSentence>(sentences, notes, split);
        }
        finally { zip?.Dispose(); }
    }

    /// <summary>Bracketed parse trees: each top-level bracket is a sentence; its leaves "(TAG word)" in order,
    /// -NONE- (empty elements, traces) dropped.</summary>
    static List<TaggedSentence> ParseMrg(TextLineReader reader, ref int traces)
    {
        var sentences = new List<TaggedSentence>();
        var words = new List<string>();
        var tags = new List<string>();
        int depth = 0, sentenceLine = 0;
        // a leaf in progress: "(" seen, then an atom (the tag), then an atom (the word), then ")"
        string? tag = null, word = null;
        bool open = false;
        while (reader.TryReadLine(out var line))
        {
            int i = 0;
            while (i < line.Length)
            {
                char c = line[i];
                if (char.IsWhiteSpace(c)) { i++; continue; }
                if (c == '(')
                {
                    if (depth == 0) { sentenceLine = reader.LineNumber; words.Clear(); tags.Clear(); }
                    depth++;
                    open = true; tag = null; word = null;
                    i++;
                }
                else if (c == ')')
                {
                    if (depth == 0) throw reader.Error("unbalanced ')'");
                    if (open && tag != null && word != null)
                    {
                        if (tag == "-NONE-") traces++;
                        else { words.Add(word); tags.Add(tag); }
                    }
                    open = false; tag = null; word = null;
                    depth--;
                    i++;
                    if (depth == 0 && words.Count > 0)
                        sentences.Add(new TaggedSentence(words.ToArray(), tags.ToArray(), $"{reader.SourceName}:{sentenceLine}"));
                }
                else
                {
                    int start = i;
                    while (i < line.Length && !char.IsWhiteSpace(line[i]) && line[i] != '(' && line[i] != ')') i++;
                    string atom = line[start..i];
                    if (!open) continue;
                    if (tag is null) tag = atom;
                    else if (word is null) word = atom;
                    else throw reader.Error($"a leaf has more than a tag and a word: '{tag} {word} {atom}'");
                }
            }
        }
        if (depth != 0) throw new BertSharpException($"{reader.SourceName}:{sentenceLine}: the bracket opened here is not closed");
        return sentences;
    }

    /// <summary>Tagged text: word/TAG tokens ('\/' is an escaped slash in a word), NP brackets [ ] ignored,
    /// ====== lines separate paragraphs; a sentence ends after a token tagged '.' (as NLTK's treebank_chunk).</summary>
    static List<TaggedSentence> ParsePos(TextLineReader reader)
    {
        var sentences = new List<TaggedSentence>();
        var words = new List<string>();
        var tags = new List<string>();
        int startLine = 0;
        void End()
        {
            if (words.Count > 0) sentences.Add(new TaggedSentence(words.ToArray(), tags.ToArray(), $"{reader.SourceName}:{startLine}"));
            words.Clear(); tags.Clear();
        }
        while (reader.TryReadLine(out var line))
        {
            var t = line.Trim();
            if (t.StartsWith("=====")) { End(); continue; }
            foreach (var token in t.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (token is "[" or "]") continue;
                int slash = token.Length - 1;
                while (slash >= 0 && (token[slash] != '/' || (slash > 0 && token[slash - 1] == '\\'))) slash--;
                if (slash <= 0 || slash == token.Length - 1) throw reader.Error($"'{token}' is not word/TAG");
                if (words.Count == 0) startLine = reader.LineNumber;
                words.Add(token[..slash]);
                string tag = token[(slash + 1)..];
                tags.Add(tag);
                if (tag == ".") End();
            }
        }
        End();
        return sentences;
    }

    // ---------------------------------------------------------------- CoNLL

    /// <summary>The CoNLL-2000 archive's layout: a zip holding CoNLL column files train.txt and test.txt (and no
    /// treebank .mrg/.pos files).</summary>
    static bool IsConllZip(string path)
    {
        try
        {
            using var zip = new ZipArchive(TextLineReader.OpenFile(path), ZipArchiveMode.Read);
            return !zip.Entries.Any(e => e.FullName.EndsWith(".mrg", StringComparison.OrdinalIgnoreCase) || e.FullName.EndsWith(".pos", StringComparison.OrdinalIgnoreCase))
                && zip.Entries.Any(e => e.Name == "train.txt");
        }
        catch (InvalidDataException) { return false; }   // not a zip: the treebank reader says so
    }

    /// <summary>Of a CoNLL zip's train.txt, the last tenth of the sentences (file order) is the dev part.</summary>
    public const int ConllZipDevDivisor = 10;

    static ExampleSet<TaggedSentence> ReadConll(string path, DataFileOptions o)
    {
        int? tagColumn = o.TagColumn;
        if (tagColumn is < 1) throw new BertSharpException($"tagColumn {tagColumn}: column 0 holds the word; the tag column is 1 or more") { Parameters = ["tagColumn"] };
        string column = tagColumn is int c ? c.ToString() : "last";
        if (path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)) return ReadConllZip(path, o, column);

        int docstarts = 0;
        List<TaggedSentence> sentences;
        using (var r = TextLineReader.Open(path, keepTabs: true)) sentences = ParseConll(r, tagColumn, o.MaxExamples, ref docstarts);
        var notes = new List<string> { $"{path}: {sentences.Count} sentences, {sentences.Sum(s => s.Words.Count)} words (CoNLL columns; tag in column {column})" };
        if (docstarts > 0) notes.Add($"{path}: skipped {docstarts} -DOCSTART- lines");
        return new ExampleSet<TaggedSentence>(sentences, notes);
    }

    /// <summary>A zip with train.txt and test.txt in CoNLL columns (the CoNLL-2000 chunking archive): the train
    /// part is train.txt but its last tenth, which is the dev part; test.txt is the test part.</summary>
    static ExampleSet<TaggedSentence> ReadConllZip(string path, DataFileOptions o, string column)
    {
        using var zip = new ZipArchive(TextLineReader.OpenFile(path), ZipArchiveMode.Read);
        ZipArchiveEntry Entry(string name) => zip.Entries.Where(e => e.Name == name).OrderBy(e => e.FullName.Length).FirstOrDefault()
            ?? throw new BertSharpException($"{path}: no {name} in the archive (a CoNLL zip holds train.txt and test.txt)");
        int docstarts = 0;
        List<TaggedSentence> Parse(ZipArchiveEntry e)
        {
            using var r = new TextLineReader(e.Open(), $"{path}:{e.FullName}") { KeepTabs = true };
            return ParseConll(r, o.TagColumn, max: null, ref docstarts);
        }
        var sentences = new List<TaggedSentence>();
        string part;
        if (o.Split == DataSplit.Test) { sentences = Parse(Entry("test.txt")); part = "test part: test.txt"; }
        else
        {
            var train = Parse(Entry("train.txt"));
            int devStart = train.Count - train.Count / ConllZipDevDivisor;
            (sentences, part) = o.Split switch
            {
                DataSplit.Train => (train[..devStart], $"train part: train.txt sentences 1–{devStart}"),
                DataSplit.Dev => (train[devStart..], $"dev part: train.txt sentences {devStart + 1}–{train.Count}"),
                _ => (train.Concat(Parse(Entry("test.txt"))).ToList(), "train.txt and test.txt"),
            };
        }
        if (o.MaxExamples is int max && sentences.Count > max) sentences = sentences[..max];
        var notes = new List<string> { $"{path}: {sentences.Count} sentences, {sentences.Sum(s => s.Words.Count)} words ({part}; CoNLL columns, tag in column {column})" };
        if (docstarts > 0) notes.Add($"{path}: skipped {docstarts} -DOCSTART- lines");
        return new ExampleSet<TaggedSentence>(sentences, notes, HasBuiltInSplit: true);
    }

    /// <summary>CoNLL columns: one word per line, the word first and the tag in <paramref name="tagColumn"/> (default:
    /// the last column); a blank line or -DOCSTART- ends a sentence.</summary>
    static List<TaggedSentence> ParseConll(TextLineReader r, int? tagColumn, int? max, ref int docstarts)
    {
        var sentences = new List<TaggedSentence>();
        var words = new List<string>();
        var tags = new List<string>();
        int startLine = 0;
        void End()
        {
            if (words.Count > 0) sentences.Add(new TaggedSentence(words.ToArray(), tags.ToArray(), $"{r.SourceName}:{startLine}"));
            words.Clear(); tags.Clear();
        }
        while (r.TryReadLine(out var line))
        {
            if (max is int m && sentences.Count >= m) { words.Clear(); break; }
            var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0) { End(); continue; }
            if (fields[0] == "-DOCSTART-") { End(); docstarts++; continue; }
            if (fields.Length < 2) throw r.Error($"expected a word and a tag separated by spaces or tabs, got '{line.Trim()}'");
            int col = tagColumn ?? fields.Length - 1;
            if (col >= fields.Length) throw r.Error($"tagColumn {col}: the line has only {fields.Length} columns").Naming("tagColumn");
            if (words.Count == 0) startLine = r.LineNumber;
            words.Add(fields[0]);
            tags.Add(fields[col]);
        }
        if (max is not int m2 || sentences.Count < m2) End();
        return sentences;
    }

    // ---------------------------------------------------------------- JSONL

    static ExampleSet<TaggedSentence> ReadJsonl(string path, DataFileOptions o, bool requireTags)
    {
        var sentences = new List<TaggedSentence>();
        using var table = new TableReader(path, TableFormat.Jsonl);
        string? wordField = o.TextColumn, tagField = o.LabelColumn;
        foreach (var rec in table.Records())
        {
            if (o.MaxExamples is int max && sentences.Count >= max) break;
            var obj = rec.Object!;
            wordField ??= WordFields.FirstOrDefault(obj.ContainsKey) ?? throw rec.Error($"no list of words (fields {string.Join(", ", WordFields)}); give textColumn").Naming("textColumn");
            tagField ??= TagFields.FirstOrDefault(obj.ContainsKey) ?? (requireTags ? throw rec.Error($"no list of tags (fields {string.Join(", ", TagFields)}); give labelColumn").Naming("labelColumn") : null);
            var words = StringList(rec, obj, wordField) ?? throw rec.Error($"no list field '{wordField}'");
            IReadOnlyList<string>? tags = tagField is null ? null : StringList(rec, obj, tagField);
            if (tags is null && requireTags) throw rec.Error($"no list field '{tagField}'");
            if (tags != null && tags.Count != words.Count) throw rec.Error($"{words.Count} words but {tags.Count} tags");
            if (words.Count == 0) continue;
            sentences.Add(new TaggedSentence(words, tags, rec.Location));
        }
        return new ExampleSet<TaggedSentence>(sentences, [$"{path}: {sentences.Count} sentences, {sentences.Sum(s => s.Words.Count)} words (JSONL; words '{wordField}', tags '{tagField}')"]);
    }

    static List<string>? StringList(TableRecord rec, JsonObject obj, string field)
    {
        if (!obj.TryGetPropertyValue(field, out var node) || node is null) return null;
        if (node is not JsonArray arr) throw rec.Error($"field '{field}' must be a list");
        return arr.Select((n, i) => n is JsonValue v
            ? (v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : v.ToJsonString())
            : throw rec.Error($"field '{field}' item {i} must be a string or a number")).ToList();
    }
}
