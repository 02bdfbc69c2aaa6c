using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data;

namespace BertSharp.Tasks.Classification;

/// <summary>One text (or pair) and its label; <see cref="Source"/> is file:line. A multi-label example has
/// <see cref="Labels"/> instead of <see cref="Label"/>.</summary>
public sealed record ClassificationExample(string Text, string? Pair, string? Label, string Source = "")
{
    /// <summary>Multi-label classification: the example's labels (empty: none of them); null for single-label examples.</summary>
    public IReadOnlyList<string>? Labels { get; init; }
}

/// <summary>
/// Reads classification data: JSONL (SNLI's files as they come, <c>.jsonl.gz</c> too), GLUE-style TSV with a
/// header, or CSV. Columns are chosen by <c>--text-column</c>/<c>--pair-column</c>/<c>--label-column</c> (a header
/// name or a 0-based index) or found by name (<see cref="PairColumns"/>, <see cref="TextColumns"/>, <see cref="LabelColumns"/>). Examples whose gold_label is
/// "-" (SNLI/MultiNLI: no annotator majority) are dropped and counted. With <see cref="DataFileOptions.MultiLabel"/> the
/// label column holds a set of labels: separated by <see cref="LabelSeparator"/> (an empty cell is no label), or in
/// JSONL a list.
/// </summary>
public static class ClassificationData
{
    /// <summary>Column pairs tried in order when no text column is given; the first pair present wins.</summary>
    public static readonly (string Text, string Pair)[] PairColumns =
    [
        ("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"), ("question", "sentence"),
        ("#1 String", "#2 String"), ("text_a", "text_b"), ("text", "pair"),
    ];

    /// <summary>Single-text columns tried next.</summary>
    public static readonly string[] TextColumns = ["text", "sentence", "review", "content"];

    public static readonly string[] LabelColumns = ["label", "gold_label", "Quality", "is_duplicate", "labels"];

    /// <summary>Separates the labels of a multi-label example in a table cell: "sports,politics".</summary>
    public const char LabelSeparator = ',';

    public static ExampleSet<ClassificationExample> Read(string path, DataFileOptions o, bool requireLabels = true)
    {
        var format = o.Format is { } f ? TableReader.ParseFormat(f) : TableReader.DetectFormat(path);
        using var table = new TableReader(path, format, !o.NoHeader);
        var records = table.Records().GetEnumerator();
        var first = records.MoveNext() ? records.Current : null;
        var (text, pair, label) = Columns(table, o, first, requireLabels);
        int ti = table.Resolve(text, "textColumn");
        int pi = pair is { } p ? table.Resolve(p, "pairColumn") : -1;
        int li = label is { } l ? table.Resolve(l, "labelColumn") : -1;
        bool goldLabel = label?.Name is "gold_label";
        var examples = new List<ClassificationExample>();
        int dropped = 0, unlabelled = 0;
        long labelCount = 0;
        for (var r = first; r != null; r = records.MoveNext() ? records.Current : null)
        {
            if (o.MaxExamples is int max && examples.Count >= max) break;
            string t = TableReader.Get(r, text, ti) ?? throw r.Error($"no text in column '{text}'");
            string? b = pair is { } pc ? TableReader.Get(r, pc, pi) ?? throw r.Error($"no second text in column '{pc}'") : null;
            string? y = null;
            IReadOnlyList<string>? ys = null;
            if (label is { } mc && o.MultiLabel)
            {
                ys = MultiLabels(r, mc, li);
                if (ys is null && requireLabels) throw r.Error($"no label in column '{mc}'");
                labelCount += ys?.Count ?? 0;
                if (ys is { Count: 0 }) unlabelled++;
            }
            else if (label is { } lc)
            {
                if (TableReader.Node(r, lc) is JsonArray)
                    throw r.Error($"the label in '{lc}' is a list; a list of labels is multi-label data (give multiLabel)").Naming("multiLabel");
                y = TableReader.Get(r, lc, li);
                if (y is null) { if (requireLabels) throw r.Error($"no label in column '{lc}'"); }
                else
                {
                    y = y.Trim();
                    if (goldLabel && y == "-") { dropped++; continue; }
                    if (y.Length == 0 && requireLabels) throw r.Error($"empty label in column '{lc}'");
                }
            }
            examples.Add(new ClassificationExample(t, b, y, r.Location) { Labels = ys });
        }
        var notes = new List<string>();
        string cols = $"text '{text}'" + (pair is { } pp ? $", pair '{pp}'" : "") + (label is { } ll ? $", label '{ll}'" : "");
        notes.Add($"{path}: {examples.Count} examples ({format.ToString().ToUpperInvariant()}; {cols})");
        if (dropped > 0) notes.Add($"{path}: dropped {dropped} examples with gold_label '-' (no annotator majority)");
        if (examples.Count == 0) throw new BertSharpException($"{path}: no examples");
        if (o.MultiLabel && label is not null)
            notes.Add($"{path}: multi-label, {(double)labelCount / examples.Count:F2} labels per example, {unlabelled} examples with none");
        return new ExampleSet<ClassificationExample>(examples, notes);
    }

    static (ColumnRef Text, ColumnRef? Pair, ColumnRef? Label) Columns(TableReader table, DataFileOptions o, TableRecord? first, bool requireLabels)
    {
        ColumnRef text;
        ColumnRef? pair = o.PairColumn is { } pc ? ColumnRef.Parse(pc) : null;
        if (o.TextColumn is { } tc) text = ColumnRef.Parse(tc);
        else
        {
            ColumnRef? found = null;
            if (pair is null)
            {
                foreach (var (a, b) in PairColumns)
                    if (table.FindColumn([a], first?.Object) is { } ca && table.FindColumn([b], first?.Object) is { } cb) { found = ca; pair = cb; break; }
            }
            found ??= table.FindColumn(TextColumns.Concat(PairColumns.Select(p => p.Text)), first?.Object);
            text = found ?? throw new BertSharpException(
                $"{table.Path}: no text column found{(table.Header is null && table.Format != TableFormat.Jsonl ? " (the file is read without a header)" : "")}; give textColumn (a header name or a 0-based index)") { Parameters = ["textColumn"] };
        }
        ColumnRef? label = o.LabelColumn is { } lc ? ColumnRef.Parse(lc) : table.FindColumn(LabelColumns, first?.Object);
        if (label is null && requireLabels)
            throw new BertSharpException($"{table.Path}: no label column found; give labelColumn (a header name or a 0-based index)") { Parameters = ["labelColumn"] };
        return (text, pair, label);
    }

    /// <summary>The labels of a multi-label record: a JSON list of strings or numbers, or a text of labels separated by
    /// <see cref="LabelSeparator"/> (blank parts skipped, a repeated label kept once); null when the field is absent.</summary>
    static List<string>? MultiLabels(TableRecord r, ColumnRef column, int index)
    {
        IEnumerable<string> parts;
        if (TableReader.Node(r, column) is JsonArray list)
            parts = list.Select(n => n is JsonValue v && v.GetValueKind() is JsonValueKind.String or JsonValueKind.Number
                ? TableReader.Scalar(v)
                : throw r.Error($"the labels in '{column}' must be strings or numbers"));
        else if (TableReader.Get(r, column, index) is { } text) parts = text.Split(LabelSeparator);
        else return null;
        return parts.Select(p => p.Trim()).Where(p => p.Length > 0).Distinct().ToList();
    }

    /// <summary>The label names of the training examples: sorted numerically when all are integers, else ordinally.</summary>
    public static List<string> LabelSet(IEnumerable<string?> labels)
    {
        var set = labels.Where(l => l != null).Select(l => l!).Distinct().ToList();
        if (set.All(l => long.TryParse(l, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
            return set.OrderBy(l => long.Parse(l, CultureInfo.InvariantCulture)).ToList();
        return set.Order(StringComparer.Ordinal).ToList();
    }
}
