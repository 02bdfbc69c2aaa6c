using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Data;

/// <summary>The layouts of a table file: tab-separated (no quoting, as GLUE's files and Python's csv with
/// quotechar=None), comma-separated with RFC 4180 quoting (a quoted field may hold commas, "" and line breaks),
/// or JSON Lines (one object per line; columns are its fields).</summary>
public enum TableFormat { Tsv, Csv, Jsonl }

/// <summary>One record of a table file: where it starts, and its fields (TSV/CSV) or object (JSONL).</summary>
public sealed class TableRecord
{
    public required string Source { get; init; }
    public required int Line { get; init; }
    public string[]? Fields { get; init; }
    public JsonObject? Object { get; init; }
    public string Location => $"{Source}:{Line}";
    public BertSharpException Error(string message) => new($"{Location}: {message}");
}

/// <summary>
/// A column chosen by header name or by 0-based index (<c>--text-column sentence1</c>, <c>--label-column 4</c>).
/// In JSON Lines a name is a field name and an index counts the fields of each object in order.
/// </summary>
public readonly record struct ColumnRef(string? Name, int? Index)
{
    public static ColumnRef Parse(string spec) =>
        int.TryParse(spec, NumberStyles.None, CultureInfo.InvariantCulture, out int i) ? new ColumnRef(null, i) : new ColumnRef(spec, null);

    public override string ToString() => Name ?? Index!.Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Reads TSV, CSV and JSONL tables under the text-input rule of <see cref="TextLineReader"/> (tabs are kept as
/// separators). The first TSV/CSV row is the header unless <c>hasHeader</c> is false. Errors name file:line.
/// </summary>
public sealed class TableReader : IDisposable
{
    readonly TextLineReader reader;
    readonly bool hasHeader;
    bool started;

    public TableReader(string path, TableFormat format, bool hasHeader = true)
    {
        Path = path;
        Format = format;
        this.hasHeader = hasHeader && format != TableFormat.Jsonl;
        reader = TextLineReader.Open(path, keepTabs: true);
    }

    public string Path { get; }
    public TableFormat Format { get; }

    /// <summary>The header row (TSV/CSV with a header), available after the first call to <see cref="Records"/>
    /// or <see cref="ReadHeader"/>.</summary>
    public string[]? Header { get; private set; }

    /// <summary>By the extension: .jsonl/.json (optionally .gz) is JSONL, .csv is CSV, anything else TSV. A .csv
    /// file whose first line holds tabs and no commas is TSV (the STS-B files are named .csv but are tab-separated).</summary>
    public static TableFormat DetectFormat(string path)
    {
        string name = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? path[..^3] : path;
        string ext = System.IO.Path.GetExtension(name).ToLowerInvariant();
        if (ext is ".jsonl" or ".json" or ".ndjson") return TableFormat.Jsonl;
        if (ext == ".csv")
        {
            string? first = FirstLine(path);
            return first != null && first.Contains('\t') && !first.Contains(',') ? TableFormat.Tsv : TableFormat.Csv;
        }
        return TableFormat.Tsv;
    }

    public static TableFormat ParseFormat(string name) => name.ToLowerInvariant() switch
    {
        "tsv" => TableFormat.Tsv,
        "csv" => TableFormat.Csv,
        "jsonl" or "json" => TableFormat.Jsonl,
        _ => throw new BertSharpException($"unknown table format '{name}' (tsv, csv, jsonl)"),
    };

    /// <summary>The first line of a text file (under the input rule, tabs kept), or null for an empty file.</summary>
    public static string? FirstLine(string path)
    {
        using var r = TextLineReader.Open(path, keepTabs: true);
        return r.TryReadLine(out var line) ? line : null;
    }

    /// <summary>Reads the header now (TSV/CSV with a header); null otherwise or for an empty file.</summary>
    public string[]? ReadHeader()
    {
        if (!started) { started = true; if (hasHeader) Header = NextFields(out _); }
        return Header;
    }

    public IEnumerable<TableRecord> Records()
    {
        ReadHeader();
        while (true)
        {
            if (Format == TableFormat.Jsonl)
            {
                if (!reader.TryReadLine(out var line)) yield break;
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonNode? node;
                try { node = JsonNode.Parse(line); }
                catch (JsonException e) { throw reader.Error($"invalid JSON: {TextLineReader.OneLine(e.Message)}"); }
                if (node is not JsonObject obj) throw reader.Error("expected a JSON object on each line");
                yield return new TableRecord { Source = Path, Line = reader.LineNumber, Object = obj };
            }
            else
            {
                var fields = NextFields(out int line);
                if (fields is null) yield break;
                if (fields.Length == 1 && fields[0].Length == 0) continue;   // a blank line
                yield return new TableRecord { Source = Path, Line = line, Fields = fields };
            }
        }
    }

    string[]? NextFields(out int startLine)
    {
        startLine = 0;
        if (!reader.TryReadLine(out var line)) return null;
        startLine = reader.LineNumber;
        if (Format == TableFormat.Tsv) return line.Split('\t');
        return ParseCsv(line);
    }

    /// <summary>RFC 4180: fields separated by commas; a field starting with a quote runs to the closing quote
    /// ("" is a quote inside it) and may span lines.</summary>
    string[] ParseCsv(string first)
    {
        var fields = new List<string>();
        var sb = new StringBuilder();
        string line = first;
        int i = 0;
        int start = reader.LineNumber;
        while (true)
        {
            // at the start of a field
            if (i < line.Length && line[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i >= line.Length)
                    {
                        if (!reader.TryReadLine(out var next))
                            throw new BertSharpException($"{Path}:{start}: a quoted field is not closed before the end of the file");
                        sb.Append('\n');
                        line = next;
                        i = 0;
                        continue;
                    }
                    char c = line[i++];
                    if (c != '"') { sb.Append(c); continue; }
                    if (i < line.Length && line[i] == '"') { sb.Append('"'); i++; continue; }
                    break;   // the closing quote
                }
                // text after a closing quote up to the separator is kept (as Python's csv does)
                while (i < line.Length && line[i] != ',') sb.Append(line[i++]);
            }
            else
            {
                while (i < line.Length && line[i] != ',') sb.Append(line[i++]);
            }
            fields.Add(sb.ToString());
            sb.Clear();
            if (i >= line.Length) return fields.ToArray();
            i++;   // the comma
        }
    }

    /// <summary>Resolves a column of a TSV/CSV table to an index (a header name, or an index checked against the
    /// header); for JSONL returns -1 (fields are looked up per record).</summary>
    public int ResolveColumn(ColumnRef column, string option)
    {
        if (Format == TableFormat.Jsonl) return -1;
        var header = ReadHeader();
        if (column.Index is int i)
        {
            if (i < 0) throw new BertSharpException($"{option} {i}: a column index is 0 or more");
            return i;
        }
        if (header is null)
            throw new BertSharpException($"{Path}: {option} '{column.Name}' names a header column, but the file is read without a header (give a 0-based index)");
        int idx = Array.IndexOf(header, column.Name);
        if (idx < 0) idx = Array.FindIndex(header, h => string.Equals(h.Trim(), column.Name, StringComparison.OrdinalIgnoreCase));
        if (idx < 0) throw new BertSharpException($"{Path}:1: {option} '{column.Name}': no such column in the header ({string.Join(", ", header.Select(h => $"'{h}'"))})");
        return idx;
    }

    /// <summary>The first of <paramref name="candidates"/> present in the header (TSV/CSV) or in the first record's
    /// fields (JSONL: pass that record), or null.</summary>
    public ColumnRef? FindColumn(IEnumerable<string> candidates, JsonObject? firstObject = null)
    {
        foreach (var c in candidates)
        {
            if (Format == TableFormat.Jsonl)
            {
                if (firstObject != null && firstObject.ContainsKey(c)) return new ColumnRef(c, null);
            }
            else if (ReadHeader() is { } h && h.Any(x => string.Equals(x.Trim(), c, StringComparison.OrdinalIgnoreCase)))
                return new ColumnRef(c, null);
        }
        return null;
    }

    /// <summary>The value of a column in a record: null when the field is absent (a short row, a missing JSON
    /// field or JSON null). JSON numbers and booleans are returned as their JSON text.</summary>
    public static string? Get(TableRecord r, ColumnRef column, int resolvedIndex)
    {
        if (r.Fields is { } f) return resolvedIndex < f.Length ? f[resolvedIndex] : null;
        var node = Node(r, column);
        return node switch
        {
            null => null,
            JsonValue v => Scalar(v),
            _ => throw r.Error($"field '{column}' must be a string or a number, not {(node is JsonArray ? "a list" : "an object")}"),
        };
    }

    /// <summary>The JSON value of a column in a JSONL record (null when absent); null for TSV/CSV records.</summary>
    public static JsonNode? Node(TableRecord r, ColumnRef column)
    {
        if (r.Object is not { } o) return null;
        if (column.Name is { } name) return o[name];
        int i = column.Index!.Value;
        return i < o.Count ? o.ElementAt(i).Value : null;
    }

    /// <summary>A JSON string as it is; a number or boolean as its JSON text.</summary>
    public static string Scalar(JsonValue v) => v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : v.ToJsonString();

    public void Dispose() => reader.Dispose();
}
