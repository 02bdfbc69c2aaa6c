using BertSharp.Data;
using BertSharp.Tasks;

namespace BertSharp.Search;

/// <summary>One text of a corpus and the 1-based line it is on.</summary>
public readonly record struct CorpusText(int Line, string Text);

/// <summary>Reads the texts of a corpus to index.</summary>
public static class SearchCorpus
{
    /// <summary>The texts of <paramref name="path"/>: one per line, under the text-input rule of
    /// <see cref="TextLineReader"/>; or, with <paramref name="textColumn"/> (a header name or a 0-based index), that column
    /// of a TSV, CSV or JSON Lines table (<see cref="TableReader.DetectFormat"/>). A .jsonl file is always read as a
    /// table, by default its "text" field. Blank texts are skipped; each text keeps the number of its line.</summary>
    /// <exception cref="BertSharpException">The file is missing, unreadable, or holds no text.</exception>
    public static List<CorpusText> Read(string path, string? textColumn = null)
    {
        var texts = new List<CorpusText>();
        var format = TableReader.DetectFormat(path);
        if (textColumn is null && format != TableFormat.Jsonl)
        {
            using var reader = TextLineReader.Open(path);
            while (reader.TryReadLine(out var line))
                if (!string.IsNullOrWhiteSpace(line)) texts.Add(new CorpusText(reader.LineNumber, line));
        }
        else
        {
            var column = ColumnRef.Parse(textColumn ?? "text");
            using var table = new TableReader(path, format);
            int index = table.Resolve(column, "textColumn");   // its errors name --text-column
            foreach (var record in table.Records())
            {
                string text = TableReader.Get(record, column, index)
                    ?? throw new BertSharpException($"{record.Location}: no '{column}' field (the text column)") { Parameters = ["textColumn"] };
                if (!string.IsNullOrWhiteSpace(text)) texts.Add(new CorpusText(record.Line, text));
            }
        }
        if (texts.Count == 0)
            throw new BertSharpException($"{path}: nothing to index: the file has no text{(textColumn is null ? "" : $" in column '{textColumn}'")}");
        return texts;
    }
}
