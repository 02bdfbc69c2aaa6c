using System.Globalization;
using BertSharp.Data;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Similarity;

namespace BertSharp.Tasks.Embedding;

/// <summary>One training or evaluation example of a sentence encoder: a scored pair (<see cref="Score"/>), an
/// (anchor, positive) pair, or an (anchor, positive, negative) triple; <see cref="Source"/> is file:line.</summary>
public sealed record EmbeddingExample(string Text, string Positive, string? Negative = null, double? Score = null, string Source = "");

/// <summary>
/// Reads sentence-encoder data in any of three shapes: scored pairs (the STS Benchmark's files, or a table with two
/// texts and a numeric score, as for similarity); (anchor, positive[, negative]) tables (columns anchor/positive/negative,
/// or two text columns without a label); and NLI files (SNLI's JSONL, or premise/hypothesis/label tables), whose
/// entailment pairs become (premise, entailment, contradiction) triples when the premise also has a contradiction,
/// else (premise, entailment) pairs, as sentence-transformers' NLI recipe builds them.
/// </summary>
public static class EmbeddingData
{
    static readonly (string Anchor, string Positive)[] AnchorColumns = [("anchor", "positive"), ("query", "positive"), ("sentence1", "sentence2"), ("text", "pair")];
    static readonly string[] NegativeColumns = ["negative", "hard_negative"];

    public static ExampleSet<EmbeddingExample> Read(string path, DataFileOptions o)
    {
        bool stsb = o.Format is { } f ? f.Equals("stsb", StringComparison.OrdinalIgnoreCase) : SimilarityData.LooksLikeStsb(path);
        if (stsb) return Scored(SimilarityData.Read(path, o with { Format = "stsb" }));
        var (anchors, scoreColumn) = ReadAnchorTable(path, o);
        if (anchors != null) return anchors;
        if (scoreColumn) return Scored(SimilarityData.Read(path, o));
        var c = ClassificationData.Read(path, o, requireLabels: false);
        var rows = c.Examples;
        if (rows.Any(r => r.Pair is null))
            throw new BertSharpException($"{rows.First(r => r.Pair is null).Source}: an embedding example needs two texts (a pair column, or anchor/positive columns)") { Parameters = ["pairColumn"] };
        if (rows.All(r => r.Label is null))
            return new ExampleSet<EmbeddingExample>(rows.Select(r => new EmbeddingExample(r.Text, r.Pair!, Source: r.Source)).ToList(), [.. c.Notes, $"{path}: (anchor, positive) pairs"]);
        if (rows.All(r => r.Label is null || double.TryParse(r.Label, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
            return Scored(SimilarityData.Read(path, o));
        if (rows.Any(r => r.Label is "entailment")) return Nli(path, rows, c.Notes);
        throw new BertSharpException($"{path}: the labels are neither scores nor NLI labels (entailment, neutral, contradiction): '{rows.First(r => r.Label != null).Label}'") { Parameters = ["labelColumn"] };
    }

    static ExampleSet<EmbeddingExample> Scored(ExampleSet<SimilarityExample> set)
    {
        var examples = set.Examples.Select(e => new EmbeddingExample(e.Text, e.Pair, Score: e.Score, Source: e.Source)).ToList();
        return new ExampleSet<EmbeddingExample>(examples, set.Notes, set.HasBuiltInSplit);
    }

    /// <summary>A table with anchor/positive (and negative) columns and no label column; null for other files, and
    /// whether they have a similarity score column (score, similarity, ...).</summary>
    static (ExampleSet<EmbeddingExample>? Anchors, bool ScoreColumn) ReadAnchorTable(string path, DataFileOptions o)
    {
        var format = o.Format is { } f ? TableReader.ParseFormat(f) : TableReader.DetectFormat(path);
        using var table = new TableReader(path, format, !o.NoHeader);
        var records = table.Records().GetEnumerator();
        var first = records.MoveNext() ? records.Current : null;
        if (first is null) throw new BertSharpException($"{path}: no examples");
        if (o.LabelColumn is null && table.FindColumn(SimilarityData.ScoreColumns.Except(ClassificationData.LabelColumns), first.Object) != null) return (null, true);
        if (o.LabelColumn != null || table.FindColumn(ClassificationData.LabelColumns, first.Object) != null) return (null, false);
        ColumnRef? anchor = o.TextColumn is { } tc ? ColumnRef.Parse(tc) : null, positive = o.PairColumn is { } pc ? ColumnRef.Parse(pc) : null;
        if (anchor is null || positive is null)
            foreach (var (a, b) in AnchorColumns)
                if (table.FindColumn([a], first.Object) is { } ca && table.FindColumn([b], first.Object) is { } cb) { anchor ??= ca; positive ??= cb; break; }
        if (anchor is null || positive is null) return (null, false);
        var negative = table.FindColumn(NegativeColumns, first.Object);
        int ai = table.Resolve(anchor.Value, "textColumn"), pi = table.Resolve(positive.Value, "pairColumn");
        int ni = negative is { } nc ? table.Resolve(nc, "negativeColumn") : -1;
        var examples = new List<EmbeddingExample>();
        for (var r = first; r != null; r = records.MoveNext() ? records.Current : null)
        {
            if (o.MaxExamples is int max && examples.Count >= max) break;
            string a = TableReader.Get(r, anchor.Value, ai) ?? throw r.Error($"no text in column '{anchor}'");
            string p = TableReader.Get(r, positive.Value, pi) ?? throw r.Error($"no positive text in column '{positive}'");
            string? n = negative is { } n2 ? TableReader.Get(r, n2, ni) : null;
            examples.Add(new EmbeddingExample(a, p, string.IsNullOrEmpty(n) ? null : n, Source: r.Location));
        }
        string cols = $"anchor '{anchor}', positive '{positive}'" + (negative is { } n3 ? $", negative '{n3}'" : "");
        return (new ExampleSet<EmbeddingExample>(examples, [$"{path}: {examples.Count} {(negative is null ? "pairs" : "triples")} ({format.ToString().ToUpperInvariant()}; {cols})"]), false);
    }

    static ExampleSet<EmbeddingExample> Nli(string path, IReadOnlyList<ClassificationExample> rows, IReadOnlyList<string> notes)
    {
        var contradictions = new Dictionary<string, string>();
        foreach (var r in rows)
            if (r.Label == "contradiction") contradictions.TryAdd(r.Text, r.Pair!);
        var examples = rows.Where(r => r.Label == "entailment")
            .Select(r => new EmbeddingExample(r.Text, r.Pair!, contradictions.GetValueOrDefault(r.Text), Source: r.Source)).ToList();
        int triples = examples.Count(e => e.Negative != null);
        return new ExampleSet<EmbeddingExample>(examples,
            [.. notes, $"{path}: NLI → {triples} (premise, entailment, contradiction) triples and {examples.Count - triples} (premise, entailment) pairs; neutral pairs unused"]);
    }
}
