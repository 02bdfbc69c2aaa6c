namespace BertSharp.Evaluation;

/// <summary>Metrics shared by the fine-tuning tasks. Each follows the reference implementation named on it.</summary>
public static class Metrics
{
    /// <summary>Fraction of positions where the two lists agree (0 for empty lists).</summary>
    public static double Accuracy<T>(IReadOnlyList<T> gold, IReadOnlyList<T> predicted)
    {
        CheckLengths(gold.Count, predicted.Count);
        if (gold.Count == 0) return 0;
        var eq = EqualityComparer<T>.Default;
        int correct = 0;
        for (int i = 0; i < gold.Count; i++) if (eq.Equals(gold[i], predicted[i])) correct++;
        return (double)correct / gold.Count;
    }

    /// <summary>scikit-learn <c>f1_score(gold, predicted, average="macro")</c>: the mean F1 over the labels that
    /// occur in either list; a label never predicted correctly scores 0.</summary>
    public static double MacroF1(IReadOnlyList<string> gold, IReadOnlyList<string> predicted) =>
        ClassificationReport.Compute(gold, predicted).MacroF1;

    /// <summary>Pearson's correlation coefficient (scipy.stats.pearsonr); NaN when either list is constant or
    /// has fewer than two values.</summary>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        CheckLengths(x.Count, y.Count);
        int n = x.Count;
        if (n < 2) return double.NaN;
        double mx = 0, my = 0;
        for (int i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
        mx /= n; my /= n;
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++)
        {
            double dx = x[i] - mx, dy = y[i] - my;
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
        }
        if (sxx == 0 || syy == 0) return double.NaN;
        return Math.Clamp(sxy / Math.Sqrt(sxx * syy), -1.0, 1.0);
    }

    /// <summary>Spearman's rank correlation (scipy.stats.spearmanr): Pearson's coefficient of the ranks, tied
    /// values sharing the average of the ranks they span.</summary>
    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        CheckLengths(x.Count, y.Count);
        return Pearson(AverageRanks(x), AverageRanks(y));
    }

    /// <summary>1-based ranks; tied values get the mean of their ranks (scipy.stats.rankdata, method="average").</summary>
    public static double[] AverageRanks(IReadOnlyList<double> values)
    {
        int n = values.Count;
        var order = Enumerable.Range(0, n).ToArray();
        Array.Sort(order, (a, b) => values[a].CompareTo(values[b]));
        var ranks = new double[n];
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && values[order[j + 1]].CompareTo(values[order[i]]) == 0) j++;
            double rank = (i + j) / 2.0 + 1;   // mean of the 1-based ranks i+1 .. j+1
            for (int k = i; k <= j; k++) ranks[order[k]] = rank;
            i = j + 1;
        }
        return ranks;
    }

    static void CheckLengths(int a, int b)
    {
        if (a != b) throw new ArgumentException($"the lists differ in length ({a} and {b})");
    }
}
