using System.Globalization;
using System.Text;
using static BertSharp.Evaluation.ClassificationReport;

namespace BertSharp.Evaluation;

/// <summary>
/// Multi-label scores with scikit-learn's conventions for label-indicator data, each label one binary problem:
/// per label precision, recall and F1 = 2TP / (2TP + FP + FN), a ratio with a zero denominator being 0;
/// micro-F1 over all the label decisions together (<c>f1_score(average="micro")</c>); macro-F1 the unweighted mean
/// over every label, a label absent from both gold and predictions scoring 0 (<c>f1_score(average="macro")</c> on an
/// indicator matrix); subset accuracy, the share of examples whose predicted set is exactly the gold set
/// (<c>accuracy_score</c> on indicator matrices).
/// </summary>
public sealed class MultiLabelReport
{
    /// <summary>The given labels in their order, then any other label met in the gold or predicted sets.</summary>
    public IReadOnlyList<string> Labels { get; }
    public IReadOnlyList<ClassScores> Classes { get; }
    public int Total { get; }
    public double SubsetAccuracy { get; }
    public double MicroPrecision { get; }
    public double MicroRecall { get; }
    public double MicroF1 { get; }
    public double MacroF1 { get; }

    MultiLabelReport(IReadOnlyList<string> labels, IReadOnlyList<ClassScores> classes, int total, double subset, double microP, double microR, double microF1, double macroF1)
    {
        Labels = labels; Classes = classes; Total = total; SubsetAccuracy = subset;
        MicroPrecision = microP; MicroRecall = microR; MicroF1 = microF1; MacroF1 = macroF1;
    }

    public static MultiLabelReport Compute(IReadOnlyList<IReadOnlyCollection<string>> gold, IReadOnlyList<IReadOnlyCollection<string>> predicted, IEnumerable<string>? labels = null)
    {
        ArgumentNullException.ThrowIfNull(gold);
        ArgumentNullException.ThrowIfNull(predicted);
        if (gold.Count != predicted.Count)
            throw new ArgumentException($"{gold.Count} gold label sets but {predicted.Count} predicted ones");
        var (order, index) = ClassificationReport.LabelOrder(labels, gold.Concat(predicted).SelectMany(set => set));

        int k = order.Count, n = gold.Count, exact = 0;
        var tp = new long[k];
        var goldCount = new long[k];
        var predictedCount = new long[k];
        for (int i = 0; i < n; i++)
        {
            var g = gold[i].ToHashSet(StringComparer.Ordinal);
            var p = predicted[i].ToHashSet(StringComparer.Ordinal);
            foreach (var l in g) goldCount[index[l]]++;
            foreach (var l in p) { predictedCount[index[l]]++; if (g.Contains(l)) tp[index[l]]++; }
            if (g.SetEquals(p)) exact++;
        }
        var classes = new List<ClassScores>(k);
        for (int c = 0; c < k; c++)
            classes.Add(new ClassScores(order[c], Ratio(tp[c], predictedCount[c]), Ratio(tp[c], goldCount[c]), F1(tp[c], predictedCount[c], goldCount[c]),
                (int)goldCount[c], (int)predictedCount[c]));
        long tpAll = tp.Sum(), predictedAll = predictedCount.Sum(), goldAll = goldCount.Sum();
        return new MultiLabelReport(order, classes, n, Ratio(exact, n), Ratio(tpAll, predictedAll), Ratio(tpAll, goldAll),
            F1(tpAll, predictedAll, goldAll), k == 0 ? 0 : classes.Average(c => c.F1));
    }

    /// <summary>2TP / (2TP + FP + FN) = 2TP / (predicted + gold); 0 when there are neither.</summary>
    static double F1(long tp, long predicted, long gold) => Ratio(2 * tp, predicted + gold);

    /// <summary>The decision thresholds <see cref="BestThreshold"/> tries: 0.05, 0.10, …, 0.95.</summary>
    public static IReadOnlyList<double> ThresholdGrid { get; } = Enumerable.Range(1, 19).Select(i => Math.Round(0.05 * i, 2)).ToArray();

    /// <summary>
    /// The threshold of <see cref="ThresholdGrid"/> whose predictions (every label whose probability reaches it) have
    /// the highest micro-F1 against <paramref name="gold"/>; of equal ones, the nearest to 0.5 (the lower on a tie).
    /// <paramref name="probabilities"/> and <paramref name="gold"/> are [examples][labels]; <paramref name="missedOutside"/>
    /// counts gold labels outside those columns (labels the model does not know), missed at every threshold.
    /// </summary>
    public static double BestThreshold(IReadOnlyList<double[]> probabilities, IReadOnlyList<bool[]> gold, long missedOutside = 0)
    {
        if (probabilities.Count != gold.Count)
            throw new ArgumentException($"{probabilities.Count} probability rows but {gold.Count} gold rows");
        long goldAll = missedOutside + gold.Sum(g => (long)g.Count(x => x));
        double best = 0.5, bestF1 = double.NegativeInfinity;
        foreach (var t in ThresholdGrid)
        {
            long tp = 0, predicted = 0;
            for (int i = 0; i < gold.Count; i++)
                for (int c = 0; c < gold[i].Length; c++)
                    if (probabilities[i][c] >= t) { predicted++; if (gold[i][c]) tp++; }
            double f1 = F1(tp, predicted, goldAll);
            if (f1 > bestF1 || (f1 == bestF1 && Math.Abs(t - 0.5) < Math.Abs(best - 0.5) - 1e-9)) (best, bestF1) = (t, f1);
        }
        return best;
    }

    /// <summary>The per-label table, the micro and macro averages and the subset accuracy, as text.</summary>
    public string Format()
    {
        var sb = new StringBuilder();
        const string subset = "subset accuracy";
        int w = ClassificationReport.TableWidth(Labels.Append(subset));
        ClassificationReport.AppendTable(sb, w, Classes);
        int support = Classes.Sum(c => c.Support);
        ClassificationReport.AppendRow(sb, w, "micro avg", MicroPrecision, MicroRecall, MicroF1, support);
        ClassificationReport.AppendRow(sb, w, "macro avg", Classes.Select(c => c.Precision).DefaultIfEmpty().Average(), Classes.Select(c => c.Recall).DefaultIfEmpty().Average(), MacroF1, support);
        sb.Append(string.Format(CultureInfo.InvariantCulture, "{0}{1,-33:F4}{2}\n", subset.PadRight(w), SubsetAccuracy, Total));
        return sb.ToString();
    }
}
