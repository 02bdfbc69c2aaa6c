using System.Globalization;
using BertSharp.Data;

namespace BertSharp.Tasks.Classification;

/// <summary>
/// Class weights for imbalanced data, one per label id.
/// <list type="bullet">
/// <item>Single-label: the weight of each class in the cross-entropy (PyTorch's <c>CrossEntropyLoss(weight=…)</c>: the
/// batch loss is Σ w[yᵢ]·nllᵢ / Σ w[yᵢ]). "auto" is scikit-learn's "balanced": n_samples / (n_classes · count).</item>
/// <item>Multi-label: each label's pos_weight in the binary cross-entropy (<c>BCEWithLogitsLoss(pos_weight=…)</c>: a
/// positive counts w times, a negative once). "auto" is the label's negatives / positives in the training data,
/// PyTorch's recipe (1 for a label on every example: there are no negatives to balance).</item>
/// </list>
/// A weights file holds one "label TAB weight" line per label to weigh; the others weigh 1.
/// </summary>
public static class ClassWeighting
{
    public const string Auto = "auto";

    /// <summary>The weights a fine-tuning run asks for: the recorded values of a resumed run, "auto", or a file; null
    /// when unweighted.</summary>
    public static double[]? Resolve(FineTuneOptions options, IReadOnlyList<ClassificationExample> train, IReadOnlyList<string> labels, bool multiLabel)
    {
        if (options.ClassWeightValues is { } values) return FromValues(values, labels);
        if (options.ClassWeights is not { } source) return null;
        return string.Equals(source, Auto, StringComparison.OrdinalIgnoreCase) ? Balanced(train, labels, multiLabel) : Read(source, labels);
    }

    /// <summary>"auto": the weights that balance the labels of <paramref name="train"/> (see the class summary).</summary>
    public static double[] Balanced(IReadOnlyList<ClassificationExample> train, IReadOnlyList<string> labels, bool multiLabel)
    {
        var index = Index(labels);
        var count = new long[labels.Count];
        foreach (var e in train)
        {
            IEnumerable<string> given = multiLabel ? e.Labels ?? [] : e.Label is { } y ? [y] : [];
            foreach (var l in given)
                if (index.TryGetValue(l, out int i)) count[i]++;
        }
        if (multiLabel)
            return count.Select(positives => positives == 0 || positives == train.Count ? 1.0 : (double)(train.Count - positives) / positives).ToArray();
        long n = count.Sum();
        return count.Select(c => c == 0 ? 1.0 : (double)n / (labels.Count * c)).ToArray();
    }

    /// <summary>Reads a weights file: one "label TAB weight" line per label (without a tab, the weight is the line's last
    /// word and the label the rest); blank lines and lines starting with '#' are skipped; labels the file does not name
    /// weigh 1. An unknown or repeated label, or a weight that is not a positive number, is an error naming file:line.</summary>
    public static double[] Read(string path, IReadOnlyList<string> labels)
    {
        var index = Index(labels);
        var weights = Enumerable.Repeat(1.0, labels.Count).ToArray();
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        using var reader = TextLineReader.Open(path, keepTabs: true);
        while (reader.TryReadLine(out var line))
        {
            var text = line.Trim();
            if (text.Length == 0 || text.StartsWith('#')) continue;
            int cut = text.LastIndexOf('\t');
            if (cut < 0) cut = text.LastIndexOf(' ');
            if (cut < 0) throw reader.Error($"expected 'label<TAB>weight', got '{text}'");
            string label = text[..cut].Trim(), number = text[(cut + 1)..].Trim();
            if (!index.TryGetValue(label, out int i)) throw reader.Error($"unknown label '{label}' (the training labels: {Names(labels)})");
            if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double w))
                throw reader.Error($"the weight of '{label}', '{number}', is not a number");
            if (!(w > 0) || double.IsInfinity(w)) throw reader.Error($"the weight of '{label}' must be a positive number, got {number}");
            if (firstLine.TryGetValue(label, out int first)) throw reader.Error($"'{label}' is weighed twice (first on line {first})");
            firstLine[label] = reader.LineNumber;
            weights[i] = w;
        }
        return weights;
    }

    /// <summary>Weights given by label (labels not given weigh 1).</summary>
    public static double[] FromValues(IReadOnlyDictionary<string, double> values, IReadOnlyList<string> labels)
    {
        var index = Index(labels);
        var weights = Enumerable.Repeat(1.0, labels.Count).ToArray();
        foreach (var (label, w) in values)
        {
            if (!index.TryGetValue(label, out int i))
                throw new BertSharpException($"classWeights: unknown label '{label}' (the training labels: {Names(labels)})") { Parameters = ["classWeights"] };
            if (!(w > 0) || double.IsInfinity(w))
                throw new BertSharpException($"classWeights: the weight of '{label}' must be a positive number, got {w.ToString(CultureInfo.InvariantCulture)}") { Parameters = ["classWeights"] };
            weights[i] = w;
        }
        return weights;
    }

    /// <summary>"label weight, …" for the user.</summary>
    public static string Describe(IReadOnlyList<double> weights, IReadOnlyList<string> labels) =>
        string.Join(", ", labels.Select((l, i) => $"{l} {weights[i].ToString("0.####", CultureInfo.InvariantCulture)}"));

    static Dictionary<string, int> Index(IReadOnlyList<string> labels) =>
        labels.Select((l, i) => (l, i)).DistinctBy(x => x.l).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal);

    static string Names(IReadOnlyList<string> labels) =>
        string.Join(", ", labels.Take(20)) + (labels.Count > 20 ? $", … ({labels.Count} in all)" : "");
}
