using System.Globalization;
using BertSharp.Data;

namespace BertSharp.Tasks.Similarity;

/// <summary>A sentence pair and its similarity score (null when unlabelled); <see cref="Source"/> is file:line.</summary>
public sealed record SimilarityExample(string Text, string Pair, double? Score, string Source = "");

/// <summary>
/// Reads similarity data: the STS Benchmark's original files (tab-separated, no header, no quoting: genre, file,
/// year, id, score, sentence1, sentence2, sometimes more columns), or the generic TSV/CSV/JSONL tables with
/// columns by name or 0-based index.
/// </summary>
public static class SimilarityData
{
    public static readonly (string Text, string Pair)[] PairColumns =
    [
        ("sentence1", "sentence2"), ("sentence_A", "sentence_B"), ("text_a", "text_b"), ("text", "pair"), ("premise", "hypothesis"),
    ];

    public static readonly string[] ScoreColumns = ["score", "label", "similarity", "relatedness_score", "similarity_score"];

    /// <summary>"stsb" when the file is named sts-*.csv, or when its first line has 7 or more tab-separated
    /// fields with a number in the 5th; else null (a generic table).</summary>
    public static bool LooksLikeStsb(string path)
    {
        string name = Path.GetFileName(path);
        if (name.StartsWith("sts-", StringComparison.OrdinalIgnoreCase) && name.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)) return true;
        string? first = TableReader.FirstLine(path);
        if (first is null) return false;
        var f = first.Split('\t');
        return f.Length >= 7 && double.TryParse(f[4], NumberStyles.Float, CultureInfo.InvariantCulture, out _);
    }

    public static ExampleSet<SimilarityExample> Read(string path, DataFileOptions o, bool requireScores = true)
    {
        bool stsb = o.Format is { } f ? f.Equals("stsb", StringComparison.OrdinalIgnoreCase) : LooksLikeStsb(path);
        return stsb ? ReadStsb(path, o, requireScores) : ReadTable(path, o, requireScores);
    }

    static ExampleSet<SimilarityExample> ReadStsb(string path, DataFileOptions o, bool requireScores)
    {
        var examples = new List<SimilarityExample>();
        using var r = TextLineReader.Open(path, keepTabs: true);
        while (r.TryReadLine(out var line))
        {
            if (o.MaxExamples is int max && examples.Count >= max) break;
            if (line.Length == 0) continue;
            var f = line.Split('\t');
            if (f.Length < 7) throw r.Error($"expected at least 7 tab-separated fields (genre, file, year, id, score, sentence1, sentence2), got {f.Length}");
            examples.Add(new SimilarityExample(f[5], f[6], ParseScore(f[4], r.Location, requireScores), r.Location));
        }
        if (examples.Count == 0) throw new BertSharpException($"{path}: no examples");
        return new ExampleSet<SimilarityExample>(examples, [$"{path}: {examples.Count} pairs (STS Benchmark format)"]);
    }

    static double? ParseScore(string s, string location, bool required)
    {
        if (double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)) return v;
        if (!required && s.Trim().Length == 0) return null;
        throw new BertSharpException($"{location}: the score '{s}' is not a number");
    }

    static ExampleSet<SimilarityExample> ReadTable(string path, DataFileOptions o, bool requireScores)
    {
        var format = o.Format is { } f ? TableReader.ParseFormat(f) : TableReader.DetectFormat(path);
        using var table = new TableReader(path, format, !o.NoHeader);
        var records = table.Records().GetEnumerator();
        var first = records.MoveNext() ? records.Current : null;
        ColumnRef? text = o.TextColumn is { } tc ? ColumnRef.Parse(tc) : null;
        ColumnRef? pair = o.PairColumn is { } pc ? ColumnRef.Parse(pc) : null;
        if (text is null || pair is null)
            foreach (var (a, b) in PairColumns)
                if (table.FindColumn([a], first?.Object) is { } ca && table.FindColumn([b], first?.Object) is { } cb)
                {
                    text ??= ca; pair ??= cb; break;
                }
        if (text is null || pair is null)
            throw new BertSharpException($"{path}: no sentence-pair columns found; give textColumn and pairColumn (header names or 0-based indexes)") { Parameters = ["textColumn", "pairColumn"] };
        ColumnRef? score = o.LabelColumn is { } lc ? ColumnRef.Parse(lc) : table.FindColumn(ScoreColumns, first?.Object);
        if (score is null && requireScores) throw new BertSharpException($"{path}: no score column found; give labelColumn") { Parameters = ["labelColumn"] };
        int ti = table.Resolve(text.Value, "textColumn"), pi = table.Resolve(pair.Value, "pairColumn");
        int si = score is { } sc ? table.Resolve(sc, "labelColumn") : -1;
        var examples = new List<SimilarityExample>();
        for (var r = first; r != null; r = records.MoveNext() ? records.Current : null)
        {
            if (o.MaxExamples is int max && examples.Count >= max) break;
            string a = TableReader.Get(r, text.Value, ti) ?? throw r.Error($"no text in column '{text}'");
            string b = TableReader.Get(r, pair.Value, pi) ?? throw r.Error($"no second text in column '{pair}'");
            double? y = null;
            if (score is { } s2)
            {
                var v = TableReader.Get(r, s2, si);
                if (v is null) { if (requireScores) throw r.Error($"no score in column '{s2}'"); }
                else y = ParseScore(v, r.Location, requireScores);
            }
            examples.Add(new SimilarityExample(a, b, y, r.Location));
        }
        if (examples.Count == 0) throw new BertSharpException($"{path}: no examples");
        return new ExampleSet<SimilarityExample>(examples,
            [$"{path}: {examples.Count} pairs ({format.ToString().ToUpperInvariant()}; text '{text}', pair '{pair}'{(score is { } s3 ? $", score '{s3}'" : "")})"]);
    }
}
