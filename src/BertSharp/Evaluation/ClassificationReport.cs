using System.Globalization;
using System.Text;

namespace BertSharp.Evaluation;

/// <summary>Precision, recall and F1 of one label (one-vs-rest), with its gold count (support) and predicted count.</summary>
public sealed record ClassScores(string Label, double Precision, double Recall, double F1, int Support, int Predicted);

/// <summary>
/// Accuracy, macro-F1, per-class scores and the confusion matrix of gold against predicted labels, with
/// scikit-learn's conventions: a ratio with a zero denominator is 0, and macro-F1 is the unweighted mean of
/// the F1 of the labels that occur in the gold labels or the predictions (<c>f1_score(average="macro")</c>).
/// </summary>
public sealed class ClassificationReport
{
    /// <summary>The rows and columns of <see cref="Confusion"/>: the given labels in their order, then any
    /// other label met in the gold or predicted lists, in order of first appearance.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Counts by [gold label index, predicted label index].</summary>
    public long[,] Confusion { get; }

    public int Total { get; }
    public double Accuracy { get; }
    public double MacroF1 { get; }
    /// <summary>F1 averaged with the gold counts as weights (scikit-learn's "weighted").</summary>
    public double WeightedF1 { get; }
    public IReadOnlyList<ClassScores> Classes { get; }

    ClassificationReport(IReadOnlyList<string> labels, long[,] confusion, int total, double accuracy, double macro, double weighted, IReadOnlyList<ClassScores> classes)
    {
        Labels = labels; Confusion = confusion; Total = total; Accuracy = accuracy; MacroF1 = macro; WeightedF1 = weighted; Classes = classes;
    }

    public static ClassificationReport Compute(IReadOnlyList<string> gold, IReadOnlyList<string> predicted, IEnumerable<string>? labels = null)
    {
        ArgumentNullException.ThrowIfNull(gold);
        ArgumentNullException.ThrowIfNull(predicted);
        if (gold.Count != predicted.Count)
            throw new ArgumentException($"{gold.Count} gold labels but {predicted.Count} predictions");
        var (order, index) = LabelOrder(labels, gold.Concat(predicted));

        int k = order.Count, n = gold.Count;
        var m = new long[k, k];
        long correct = 0;
        for (int i = 0; i < n; i++)
        {
            int g = index[gold[i]], p = index[predicted[i]];
            m[g, p]++;
            if (g == p) correct++;
        }
        var classes = new List<ClassScores>(k);
        double macroSum = 0, weightedSum = 0;
        int present = 0;
        for (int c = 0; c < k; c++)
        {
            long tp = m[c, c], support = 0, predictedCount = 0;
            for (int j = 0; j < k; j++) { support += m[c, j]; predictedCount += m[j, c]; }
            double precision = Ratio(tp, predictedCount), recall = Ratio(tp, support);
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            classes.Add(new ClassScores(order[c], precision, recall, f1, (int)support, (int)predictedCount));
            if (support > 0 || predictedCount > 0) { macroSum += f1; present++; }
            weightedSum += f1 * support;
        }
        return new ClassificationReport(order, m, n, Ratio(correct, n), present == 0 ? 0 : macroSum / present,
            n == 0 ? 0 : weightedSum / n, classes);
    }

    /// <summary>a / b, 0 when b is 0 (scikit-learn's zero_division=0).</summary>
    internal static double Ratio(long a, long b) => b == 0 ? 0 : (double)a / b;

    /// <summary>The labels of a report: the given ones in their order, then each other one met, in order of first
    /// appearance; with the index of each.</summary>
    internal static (List<string> Order, Dictionary<string, int> Index) LabelOrder(IEnumerable<string>? given, IEnumerable<string> met)
    {
        var order = new List<string>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var l in (given ?? []).Concat(met))
            if (index.TryAdd(l, order.Count)) order.Add(l);
        return (order, index);
    }

    /// <summary>The width of the label column of a per-label table.</summary>
    internal static int TableWidth(IEnumerable<string> labels) => Math.Max(12, labels.Select(l => l.Length + 2).DefaultIfEmpty(0).Max());

    /// <summary>The per-label table: a header, then precision, recall, F1 and support of each label.</summary>
    internal static void AppendTable(StringBuilder sb, int width, IEnumerable<ClassScores> classes)
    {
        sb.Append("label".PadRight(width)).Append("precision  recall     f1         support\n");
        foreach (var c in classes) AppendRow(sb, width, c.Label, c.Precision, c.Recall, c.F1, c.Support);
    }

    internal static void AppendRow(StringBuilder sb, int width, string name, double precision, double recall, double f1, int support) =>
        sb.Append(name.PadRight(width)).Append(string.Format(CultureInfo.InvariantCulture, "{0,-11:F4}{1,-11:F4}{2,-11:F4}{3}\n", precision, recall, f1, support));

    /// <summary>The per-class table and the confusion matrix (rows gold, columns predicted), as text.</summary>
    public string Format()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        int w = TableWidth(Labels);
        AppendTable(sb, w, Classes);
        var present = Classes.Where(c => c.Support + c.Predicted > 0).ToList();
        AppendRow(sb, w, "macro avg", present.Select(c => c.Precision).DefaultIfEmpty().Average(), present.Select(c => c.Recall).DefaultIfEmpty().Average(), MacroF1, Total);
        sb.Append(string.Format(inv, "{0}{1,-33:F4}{2}\n", "accuracy".PadRight(w), Accuracy, Total));
        sb.Append('\n').Append("confusion matrix (rows: gold, columns: predicted)\n");
        var cells = Labels.Select(l => Math.Max(l.Length, 1)).ToArray();
        for (int j = 0; j < Labels.Count; j++)
            for (int i = 0; i < Labels.Count; i++) cells[j] = Math.Max(cells[j], Confusion[i, j].ToString(inv).Length);
        sb.Append(new string(' ', w));
        for (int j = 0; j < Labels.Count; j++) sb.Append(' ').Append(Labels[j].PadLeft(cells[j]));
        sb.Append('\n');
        for (int i = 0; i < Labels.Count; i++)
        {
            sb.Append(Labels[i].PadRight(w));
            for (int j = 0; j < Labels.Count; j++) sb.Append(' ').Append(Confusion[i, j].ToString(inv).PadLeft(cells[j]));
            sb.Append('\n');
        }
        return sb.ToString();
    }
}
