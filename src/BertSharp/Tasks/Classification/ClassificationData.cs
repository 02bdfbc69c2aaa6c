using System.Globalization;
using BertSharp.Data;

namespace BertSharp.Tasks.Classification;

/// <summary>One text (or pair) and its label; <see cref="Source"/> is file:line.</summary>
public sealed record ClassificationExample(string Text, string? Pair, string? Label, string Source = "");

/// <summary>
/// Reads classification data: JSONL (SNLI's files as they come, <c>.jsonl.gz</c> too), GLUE-style TSV with a
/// header, or CSV. Columns are chosen by <c>--text-column</c>/<c>--pair-column</c>/<c>--label-column</c> (a header
/// name or a 0-based index) or found by name (<see cref="PairColumns"/>, <see cref="TextColumns"/>, <see cref="LabelColumns"/>). Examples whose gold_label is
/// "-" (SNLI/MultiNLI: no annotator majority) are dropped and counted.
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
        int dropped = 0;
        for (var r = first; r != null; r = records.MoveNext() ? records.Current : null)
        {
            if (o.MaxExamples is int max && examples.Count >= max) break;
            string t = TableReader.Get(r, text, ti) ?? throw r.Error($"no text in column '{text}'");
            string? b = pair is { } pc ? TableReader.Get(r, pc, pi) ?? throw r.Error($"no second text in column '{pc}'") : null;
            string? y = null;
            if (label is { } lc)
            {
                y = TableReader.Get(r, lc, li);
                if (y is null) { if (requireLabels) throw r.Error($"no label in column '{lc}'"); }
                else
                {
                    y = y.Trim();
                    if (goldLabel && y == "-") { dropped++; continue; }
                    if (y.Length == 0 && requireLabels) throw r.Error($"empty label in column '{lc}'");
                }
            }
            examples.Add(new ClassificationExample(t, b, y, r.Location));
        }
        var notes = new List<string>();
        string cols = $"text '{text}'" + (pair is { } pp ? $", pair '{pp}'" : "") + (label is { } ll ? $", label '{ll}'" : "");
        notes.Add($"{path}: {examples.Count} examples ({format.ToString().ToUpperInvariant()}; {cols})");
        if (dropped > 0) notes.Add($"{path}: dropped {dropped} examples with gold_label '-' (no annotator majority)");
        if (examples.Count == 0) throw new BertSharpException($"{path}: no examples");
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

    /// <summary>The label names of the training examples: sorted numerically when all are integers, else ordinally.</summary>
    public static List<string> LabelSet(IEnumerable<string?> labels)
    {
        var set = labels.Where(l => l != null).Select(l => l!).Distinct().ToList();
        if (set.All(l => long.TryParse(l, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
            return set.OrderBy(l => long.Parse(l, CultureInfo.InvariantCulture)).ToList();
        return set.Order(StringComparer.Ordinal).ToList();
    }
}
